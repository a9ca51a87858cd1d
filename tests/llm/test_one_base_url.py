"""One OpenAI base URL for the whole suite: the ``openai`` SDK pointed at the llm's ``/v1`` (and at
``/ollama/v1``, as Ollama serves OpenAI's API) reaches chat, embeddings, speech, transcription and
translation, the last four forwarded to the real embedding, tts and asr services."""

import httpx
import openai
import pytest
from openai.types import CreateEmbeddingResponse, Model
from openai.types.audio import Transcription, Translation
from openai.types.chat import ChatCompletion

from services.media import decode_audio
from tests.llm.conftest import EMBEDDER, SMOL

ENGLISH, CHINESE = "I love programming", "我喜欢编程"
ASR_MODELS, TTS_MODELS = ["whisper-base", "whisper-1"], ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]
EVERY_MODEL = [SMOL, EMBEDDER, *ASR_MODELS, *TTS_MODELS]
SPOKEN = "The weather is nice today. We will walk to the park after lunch."


def sdk(running, root: str = "/v1", **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{running.url}{root}", api_key="unused", **kwargs)


@pytest.mark.parametrize("root", ["/v1", "/ollama/v1"])
def test_embeddings_through_the_llm_in_english_and_chinese(suite, root):
    answer = sdk(suite, root).embeddings.create(model=EMBEDDER, input=[ENGLISH, CHINESE])  # the SDK asks for base64
    assert answer.model == EMBEDDER and [row.index for row in answer.data] == [0, 1]
    assert len(answer.data[0].embedding) == 512 and answer.data[0].embedding != answer.data[1].embedding
    raw = httpx.post(f"{suite.url}{root}/embeddings", json={"input": CHINESE, "model": EMBEDDER}, timeout=60)
    body = CreateEmbeddingResponse.model_validate(raw.json())
    assert body.data[0].embedding == pytest.approx(answer.data[1].embedding, abs=1e-5)
    assert raw.headers["content-type"] == "application/json"


@pytest.mark.parametrize("root", ["/v1", "/ollama/v1"])
def test_models_list_every_reachable_service(suite, root):
    listed = sdk(suite, root).models.list()
    assert [model.id for model in listed] == EVERY_MODEL
    assert sdk(suite, root).models.retrieve(EMBEDDER).id == EMBEDDER
    assert sdk(suite, root).models.retrieve("tts-1").id == "tts-1"
    raw = httpx.get(f"{suite.url}{root}/models").json()
    assert [Model.model_validate(row).id for row in raw["data"]] == EVERY_MODEL
    with pytest.raises(openai.NotFoundError, match=EMBEDDER):
        sdk(suite, root).models.retrieve("gpt-9")


def test_chat_through_ollamas_openai_root(suite):
    completion = sdk(suite, "/ollama/v1").chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0
    )
    assert "Paris" in completion.choices[0].message.content
    assert ChatCompletion.model_validate(completion.model_dump()).model == SMOL


def test_speech_and_transcription_round_trip_through_the_llm(suite):
    client = sdk(suite)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="style1", input=SPOKEN, response_format="wav"
    ) as speech:
        assert speech.status_code == 200 and speech.headers["content-type"] == "audio/wav"
        audio = speech.read()
    assert audio[:4] == b"RIFF" and len(audio) > 50_000
    text = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", audio, "audio/wav")).text
    assert "weather" in text.lower() and "park" in text.lower()
    chinese = client.audio.speech.create(model="tts-1", voice="style1", input="今天天气很好。", response_format="wav")
    assert chinese.content[:4] == b"RIFF"


def test_openai_voices_chinese_speech_and_its_translation_through_the_llm(suite):
    client = sdk(suite)
    for response_format in ("mp3", "opus", "aac", "flac"):
        speech = client.audio.speech.create(
            model="tts-1", voice="alloy", input="你好，世界", response_format=response_format
        )
        assert decode_audio(speech.content).size > 16_000 * 0.5, response_format  # PyAV reads it back
    voices = httpx.get(f"{suite.url}/v1/audio/voices").json()["voices"]
    assert {"id": "alloy", "name": "alloy (style1)"} in voices
    assert httpx.get(f"{suite.url}/v1/audio/models").json()["models"][0] == {"id": "tts-1"}
    mandarin = client.audio.speech.create(model="tts-1", voice="nova", input="我爱我的妈妈。", response_format="wav")
    translation = client.audio.translations.create(model="whisper-1", file=("m.wav", mandarin.content, "audio/wav"))
    assert isinstance(translation, Translation) and "mother" in translation.text.lower(), translation.text


def test_an_upload_sent_in_chunks_is_streamed_on_to_asr(suite):
    audio = sdk(suite).audio.speech.create(model="tts-1", voice="style1", input=SPOKEN, response_format="wav").content
    built = httpx.Request("POST", "http://x", files={"file": ("speech.wav", audio, "audio/wav")}, data={"model": "m"})
    body = built.read()
    chunks = (body[i : i + 16_384] for i in range(0, len(body), 16_384))  # no Content-Length: chunked
    response = httpx.post(
        f"{suite.url}/v1/audio/transcriptions",
        content=chunks,
        headers={"content-type": built.headers["content-type"]},
        timeout=120,
    )
    assert response.status_code == 200 and "weather" in Transcription.model_validate(response.json()).text.lower()


def test_rerank_is_forwarded_to_the_embedding_service(suite):
    documents = ["I love programming", "天气真好", "Python is a programming language"]
    response = httpx.post(f"{suite.url}/v1/rerank", json={"query": "programming", "documents": documents}, timeout=60)
    results = response.json()["results"]
    assert response.status_code == 200 and sorted(row["index"] for row in results) == [0, 1, 2]
    assert results[-1]["index"] == 1  # the weather is least about programming


def test_bad_input_gets_the_siblings_own_4xx_in_openais_shape(suite):
    client = sdk(suite, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model=EMBEDDER, input=[])
    assert 400 <= caught.value.status_code < 500 and caught.value.body["message"]
    with pytest.raises(openai.NotFoundError, match=EMBEDDER):
        client.embeddings.create(model="text-embedding-3-small", input=CHINESE)
    with pytest.raises(openai.BadRequestError, match="style"):
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="hello")
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio", "text/plain"))
    assert 400 <= caught.value.status_code < 500


@pytest.mark.parametrize(
    ("call", "setting"),
    [
        (lambda client: client.embeddings.create(model=EMBEDDER, input=ENGLISH), "LLM_EMBEDDING_URL"),
        (lambda client: client.audio.speech.create(model="tts-1", voice="alloy", input="hi"), "LLM_TTS_URL"),
        (lambda client: client.audio.transcriptions.create(model="whisper-1", file=b"RIFF"), "LLM_ASR_URL"),
    ],
)
def test_a_sibling_down_or_not_configured_is_named_with_its_setting(gateway, smol, call, setting):
    with pytest.raises(openai.InternalServerError) as down:
        call(sdk(gateway, max_retries=0))
    assert down.value.status_code == 502 and setting in down.value.message and "unreachable" in down.value.message
    with pytest.raises(openai.InternalServerError) as off:
        call(sdk(smol, max_retries=0))
    assert off.value.status_code == 503 and setting in off.value.message and "not configured" in off.value.message
