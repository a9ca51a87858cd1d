// lingxi opro: the three-column page (sessions | conversation + candidates | session detail).
// Plain JavaScript, no build step, no external asset: /ui/offline inlines this file.
(function () {
  "use strict";
  var TEXT = {
    zh: {
      title: "灵犀 · 提示词优化", model: "模型", newSession: "新会话", sessions: "会话", detail: "会话详情",
      send: "发送", askPlaceholder: "输入你的问题(新会话)或继续对话", candidates: "候选提示词", round: "第 {n} 轮",
      select: "选用", reject: "拒绝", reasonPlaceholder: "拒绝理由(可选)", confirmReject: "确认拒绝",
      regenerate: "重新生成", working: "模型正在生成,请稍候…", original: "原始问题", selected: "已选提示词",
      rounds: "轮次", rejected: "已拒绝", none: "无", noSessions: "还没有会话", pickSession: "选择左侧会话,或输入问题开始",
      noCandidates: "当前没有候选提示词,点击“重新生成”开始新一轮", lang: "English", sessionModel: "会话模型", defaultModel: "默认模型"
    },
    en: {
      title: "lingxi · prompt optimizer", model: "Model", newSession: "New session", sessions: "Sessions",
      detail: "Session detail", send: "Send", askPlaceholder: "Ask a question (new session) or continue the chat",
      candidates: "Candidate prompts", round: "round {n}", select: "Select", reject: "Reject",
      reasonPlaceholder: "reason (optional)", confirmReject: "Confirm reject", regenerate: "Regenerate",
      working: "The model is working…", original: "Original question", selected: "Selected prompt", rounds: "Rounds",
      rejected: "Rejected", none: "none", noSessions: "No sessions yet", pickSession: "Pick a session or ask a question",
      noCandidates: "No candidates on show: Regenerate starts a new round", lang: "中文", sessionModel: "Session model", defaultModel: "default model"
    }
  };
  var state = { lang: localStorage.getItem("opro-lang") || (/^zh/i.test(navigator.language) ? "zh" : "en"),
    sid: null, detail: null, candidates: [], round: null, busy: false, models: [], model: "" };
  var $ = function (id) { return document.getElementById(id); };
  function t(key, vars) {
    var s = (TEXT[state.lang] || TEXT.en)[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.replace("{" + k + "}", vars[k]); });
    return s;
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  // GET without a body; POST a JSON body or a FormData (an upload); `method` overrides (DELETE).
  async function api(path, body, method) {
    var init = {};
    if (body instanceof FormData) init = { method: "POST", body: body };
    else if (body !== undefined) init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    if (method) init.method = method;
    var response = await fetch(path, init);
    var envelope;
    try { envelope = await response.json(); } catch (e) { throw new Error("HTTP " + response.status); }
    if (!envelope || envelope.code !== 0) throw new Error((envelope && envelope.msg) || ("HTTP " + response.status));
    return envelope.data;
  }
  async function run(task) {
    if (state.busy) return;
    state.busy = true; showError(""); renderStatus();
    try { await task(); } catch (e) { showError(e.message); } finally { state.busy = false; renderStatus(); }
  }
  function showError(message) { var box = $("error"); box.textContent = message; box.style.display = message ? "block" : "none"; }
  function renderStatus() {
    var status = $("status");
    status.textContent = state.busy ? t("working") : "";
    status.className = state.busy ? "busy" : "";
    Array.prototype.forEach.call(document.querySelectorAll("button, textarea, select"), function (b) {
      if (b.id !== "lang-toggle") b.disabled = state.busy;
    });
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n-placeholder]"), function (n) { n.placeholder = t(n.getAttribute("data-i18n-placeholder")); });
    $("lang-toggle").textContent = t("lang");
    renderAll();
    window.oproUI.onLanguage.forEach(function (render) { render(); });
  }

  async function loadModels() {
    try { state.models = (await api("/models")).models; } catch (e) { showError(e.message); state.models = []; }
    renderModels();
  }
  function renderModels() {
    var picker = $("model-picker"); picker.innerHTML = "";
    picker.appendChild(el("option", { value: "", text: "(" + t("defaultModel") + ")" }));
    state.models.forEach(function (m) { picker.appendChild(el("option", { value: m, text: m })); });
    picker.value = (state.detail && state.detail.model_name) || state.model || "";
    window.oproUI.onModels.forEach(function (render) { render(state.models); });
  }
  async function loadSessions() {
    var data = await api("/sessions");
    var list = $("session-list"); list.innerHTML = "";
    if (!data.sessions.length) list.appendChild(el("div", { "class": "empty", text: t("noSessions") }));
    data.sessions.forEach(function (s) {
      list.appendChild(el("div", { "class": "session-item" + (s.session_id === state.sid ? " active" : ""), "data-sid": s.session_id,
        onclick: function () { run(function () { return openSession(s.session_id); }); } },
        [el("div", { text: s.original_query.slice(0, 60) }), el("small", { text: t("round", { n: s.round }) + (s.selected_prompt ? " · ✓" : "") })]));
    });
  }
  async function openSession(sid) {
    state.sid = sid;
    state.detail = await api("/session/" + encodeURIComponent(sid));
    state.candidates = state.detail.candidates || [];
    state.round = state.detail.round ? state.detail.round - 1 : null;
    renderAll(); await loadSessions();
  }
  async function refresh() { if (state.sid) state.detail = await api("/session/" + encodeURIComponent(state.sid)); renderAll(); await loadSessions(); }

  function takeRound(data) { state.sid = data.session_id; state.candidates = data.candidates || []; state.round = data.round; }
  async function ask(text) {
    if (!state.sid) {
      var data = await api("/query", { query: text });
      takeRound(data);
      if (state.model) await api("/set_model", { session_id: state.sid, model_name: state.model });
    } else {
      await api("/message", { session_id: state.sid, message: text });
    }
    await refresh();
  }
  async function selectCandidate(text) { await api("/select", { session_id: state.sid, choice: text }); state.candidates = []; await refresh(); }
  async function rejectCandidate(text, reason) { takeRound(await api("/reject", { session_id: state.sid, candidate: text, reason: reason })); await refresh(); }
  async function regenerate() { takeRound(await api("/query_from_message", { session_id: state.sid })); await refresh(); }

  function renderAll() { renderConversation(); renderCandidates(); renderDetail(); renderModels(); renderStatus(); }
  function renderConversation() {
    var box = $("conversation"); box.innerHTML = "";
    if (!state.detail) { box.appendChild(el("div", { "class": "empty", text: t("pickSession") })); return; }
    box.appendChild(el("div", { "class": "msg user original", text: state.detail.original_query }));
    (state.detail.history || []).forEach(function (m) { box.appendChild(el("div", { "class": "msg " + m.role, text: m.content })); });
    box.scrollTop = box.scrollHeight;
  }
  function renderCandidates() {
    var box = $("candidates"); box.innerHTML = "";
    if (!state.sid) { box.style.display = "none"; return; }
    box.style.display = "block";
    box.appendChild(el("h2", { text: t("candidates") + (state.round !== null ? " · " + t("round", { n: state.round }) : "") }));
    if (!state.candidates.length) box.appendChild(el("div", { "class": "empty", text: t("noCandidates") }));
    state.candidates.forEach(function (text) {
      var reason = el("input", { type: "text", "class": "reason", placeholder: t("reasonPlaceholder") });
      var confirm = el("button", { type: "button", "class": "danger confirm-reject", text: t("confirmReject"),
        onclick: function () { run(function () { return rejectCandidate(text, reason.value); }); } });
      reason.style.display = confirm.style.display = "none";
      box.appendChild(el("div", { "class": "candidate" }, [
        el("div", { "class": "text", text: text }),
        el("div", { "class": "actions" }, [
          el("button", { type: "button", "class": "primary select-btn", text: t("select"),
            onclick: function () { run(function () { return selectCandidate(text); }); } }),
          el("button", { type: "button", "class": "danger reject-btn", text: t("reject"),
            onclick: function () { reason.style.display = confirm.style.display = ""; reason.focus(); } }),
          reason, confirm])]));
    });
    box.appendChild(el("button", { type: "button", id: "regenerate", text: t("regenerate"), onclick: function () { run(regenerate); } }));
  }
  function renderDetail() {
    var box = $("detail"); box.innerHTML = "";
    var d = state.detail;
    if (!d) { box.appendChild(el("div", { "class": "empty", text: t("pickSession") })); return; }
    function item(label, node) { return [el("dt", { text: label }), el("dd", {}, [node])]; }
    var rounds = el("div", {});
    (d.rounds || []).forEach(function (r) {
      rounds.appendChild(el("div", { "class": "round" }, [el("strong", { text: t("round", { n: r.round }) }),
        el("ol", {}, r.candidates.map(function (c) { return el("li", { text: c }); }))]));
    });
    var rejected = el("ul", { "class": "rejected" }, (d.rejections || []).map(function (r) {
      return el("li", { text: r.candidate + (r.reason ? " — " + r.reason : "") }); }));
    var none = function () { return el("span", { "class": "empty", text: t("none") }); };
    var dl = el("dl", { id: "detail-list" }, [].concat(
      item(t("original"), el("span", { id: "detail-original", text: d.original_query })),
      item(t("selected"), d.selected_prompt ? el("span", { id: "detail-selected", text: d.selected_prompt }) : none()),
      item(t("sessionModel"), el("span", { text: d.model_name || t("defaultModel") })),
      item(t("rounds") + " (" + d.round + ")", d.rounds && d.rounds.length ? rounds : none()),
      item(t("rejected"), d.rejections && d.rejections.length ? rejected : none())));
    box.appendChild(dl);
  }

  // What optimize.js (the OPRO view) shares with this page.
  window.oproUI = { TEXT: TEXT, t: t, el: el, api: api, applyLanguage: applyLanguage, onLanguage: [], onModels: [],
    models: function () { return state.models; } };

  $("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("question").value.trim(); if (!text) return;
    run(async function () { await ask(text); $("question").value = ""; });
  });
  $("question").addEventListener("keydown", function (e) { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("composer").requestSubmit(); });
  $("new-session").addEventListener("click", function () { state.sid = null; state.detail = null; state.candidates = []; state.round = null; renderAll(); loadSessions().catch(function (e) { showError(e.message); }); });
  $("lang-toggle").addEventListener("click", function () { state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("opro-lang", state.lang); applyLanguage(); });
  $("model-picker").addEventListener("change", function (e) {
    state.model = e.target.value;
    if (state.sid && state.model) run(async function () { await api("/set_model", { session_id: state.sid, model_name: state.model }); await refresh(); });
  });
  applyLanguage();
  loadModels();
  loadSessions().catch(function (e) { showError(e.message); });
})();
