// lingxi's voice page: the microphone to WS /v1/realtime (OpenAI's Realtime API, GA event names) and the
// answer's audio played as it arrives. Hands-free uses the server's VAD; "hold to talk" commits by hand.
// Speaking over the answer stops its audio at once and tells the server how much of it was heard.
"use strict";

const RATE = 24000; // the Realtime API's PCM16: 24 kHz mono
const SEND_EVERY = RATE / 10; // samples: one input_audio_buffer.append per 100 ms of speech

const $ = (id) => document.getElementById(id);
const stats = { audioBytes: 0, audioDeltas: 0, events: {}, errors: [] }; // read by the page's tests
window.voiceStats = stats;

let socket = null;
let context = null;
let microphone = null;
let handsFree = true;
let talking = false; // hold to talk: the button is down
let pending = []; // captured Int16 blocks not sent yet
let pendingSamples = 0;
let responding = false;
const bubbles = new Map(); // item id -> its <li>
const playing = { item: null, sources: new Set(), next: 0, startedAt: 0, scheduledMs: 0 };

function setStatus(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

function send(event) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
}

// --- the connection ------------------------------------------------------------------------------
async function start() {
  handsFree = $("hands-free").checked;
  localStorage.setItem("lingxi-voice-key", $("key").value);
  context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("/ui/voice/assets/voice-capture.js");
  microphone = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const capture = new AudioWorkletNode(context, "capture");
  capture.port.onmessage = (message) => captured(message.data);
  context.createMediaStreamSource(microphone).connect(capture);

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const protocols = ["realtime"];
  if ($("key").value) protocols.push("openai-insecure-api-key." + $("key").value);
  socket = new WebSocket(`${scheme}://${location.host}/v1/realtime?model=gpt-realtime`, protocols);
  socket.onopen = () => {
    send({ type: "session.update", session: sessionSettings() });
    setStatus(handsFree ? "请说话 · listening" : "按住说话 · hold to talk", "listening");
  };
  socket.onmessage = (message) => received(JSON.parse(message.data));
  socket.onclose = (closed) => {
    setStatus(`已断开 · disconnected (${closed.code}${closed.reason ? " " + closed.reason : ""})`, "error");
    stop();
  };
  $("connect").disabled = true;
  $("stop").disabled = false;
  $("talk").disabled = handsFree;
}

function sessionSettings() {
  const vad = { type: "server_vad", create_response: true, interrupt_response: true };
  return {
    type: "realtime",
    output_modalities: ["audio"],
    audio: {
      input: {
        format: { type: "audio/pcm", rate: RATE },
        turn_detection: handsFree ? vad : null,
        transcription: $("language").value ? { model: "whisper-1", language: $("language").value } : { model: "whisper-1" },
      },
      output: { format: { type: "audio/pcm", rate: RATE }, voice: $("voice").value },
    },
  };
}

function stop() {
  stopPlaying(false);
  if (socket) socket.close();
  if (microphone) microphone.getTracks().forEach((track) => track.stop());
  if (context) context.close();
  socket = microphone = context = null;
  $("connect").disabled = false;
  $("stop").disabled = $("talk").disabled = true;
}

// --- the microphone ------------------------------------------------------------------------------
function captured(samples) {
  if (!handsFree && !talking) return;
  const block = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    block[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  }
  pending.push(block);
  pendingSamples += block.length;
  if (pendingSamples >= SEND_EVERY) flush();
}

function flush() {
  if (!pendingSamples) return;
  const joined = new Int16Array(pendingSamples);
  let at = 0;
  for (const block of pending) {
    joined.set(block, at);
    at += block.length;
  }
  pending = [];
  pendingSamples = 0;
  send({ type: "input_audio_buffer.append", audio: toBase64(new Uint8Array(joined.buffer)) });
}

function pressTalk() {
  if (talking || !socket) return;
  interrupt();
  send({ type: "input_audio_buffer.clear" });
  talking = true;
  $("talk").classList.add("held");
  setStatus("正在听 · listening", "listening");
}

function releaseTalk() {
  if (!talking) return;
  talking = false;
  $("talk").classList.remove("held");
  flush();
  send({ type: "input_audio_buffer.commit" });
  send({ type: "response.create" });
  setStatus("思考中 · thinking");
}

// --- what the server says ------------------------------------------------------------------------
const handlers = {
  "input_audio_buffer.speech_started": () => {
    stopPlaying(true); // the server cancels the answer itself (interrupt_response)
    setStatus("正在听 · listening", "listening");
  },
  "input_audio_buffer.speech_stopped": () => setStatus("思考中 · thinking"),
  "conversation.item.input_audio_transcription.delta": (e) => bubble(e.item_id, "user").append(e.delta),
  "conversation.item.input_audio_transcription.completed": (e) => {
    bubble(e.item_id, "user").textContent = e.transcript;
  },
  "response.created": () => {
    responding = true;
  },
  "response.output_audio_transcript.delta": (e) => bubble(e.item_id, "assistant").append(e.delta),
  "response.output_text.delta": (e) => bubble(e.item_id, "assistant").append(e.delta),
  "response.output_audio.delta": (e) => play(e.item_id, e.delta),
  "response.done": (e) => {
    responding = false;
    if (e.response.status === "cancelled") {
      for (const item of e.response.output || []) if (bubbles.has(item.id)) bubbles.get(item.id).classList.add("cut");
    }
    setStatus(handsFree ? "请说话 · listening" : "按住说话 · hold to talk", "listening");
  },
  error: (e) => {
    stats.errors.push(e.error);
    setStatus("错误 · error: " + e.error.message, "error");
  },
};

function received(event) {
  stats.events[event.type] = (stats.events[event.type] || 0) + 1;
  const handler = handlers[event.type];
  if (handler) handler(event);
}

function bubble(itemId, role) {
  let li = bubbles.get(itemId);
  if (!li) {
    li = document.createElement("li");
    li.className = role;
    li.dataset.item = itemId;
    bubbles.set(itemId, li);
    $("conversation").append(li);
  }
  return li;
}

// --- the answer's audio --------------------------------------------------------------------------
function play(itemId, base64) {
  const bytes = fromBase64(base64);
  stats.audioBytes += bytes.length;
  stats.audioDeltas += 1;
  if (!context) return;
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  const buffer = context.createBuffer(1, pcm.length, RATE);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
  if (playing.item !== itemId) {
    stopPlaying(false);
    playing.item = itemId;
    playing.next = playing.startedAt = context.currentTime + 0.05;
    playing.scheduledMs = 0;
  }
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  const at = Math.max(playing.next, context.currentTime);
  source.start(at);
  playing.next = at + buffer.duration;
  playing.scheduledMs += buffer.duration * 1000;
  playing.sources.add(source);
  source.onended = () => playing.sources.delete(source);
}

// Stop the answer being played; with ``tell``, the server learns how much of it was heard.
function stopPlaying(tell) {
  if (playing.item && tell && playing.sources.size && context) {
    const heardMs = Math.round(Math.min(playing.scheduledMs, (context.currentTime - playing.startedAt) * 1000));
    send({ type: "conversation.item.truncate", item_id: playing.item, content_index: 0, audio_end_ms: Math.max(0, heardMs) });
  }
  for (const source of playing.sources) source.stop();
  playing.sources.clear();
  playing.item = null;
}

function interrupt() {
  if (responding) send({ type: "response.cancel" });
  stopPlaying(true);
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// --- the page ------------------------------------------------------------------------------------
$("key").value = localStorage.getItem("lingxi-voice-key") || "";
$("connect").onclick = () => start().catch((error) => {
  setStatus("无法开始 · cannot start: " + error.message, "error");
  stop();
});
$("stop").onclick = stop;
$("talk").onpointerdown = pressTalk;
$("talk").onpointerup = $("talk").onpointerleave = releaseTalk;
document.addEventListener("keydown", (e) => { if (e.code === "Space" && !handsFree && !e.repeat) pressTalk(); });
document.addEventListener("keyup", (e) => { if (e.code === "Space" && !handsFree) releaseTalk(); });
