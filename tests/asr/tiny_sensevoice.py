"""A tiny SenseVoiceSmall built in the test: a small config, random weights, a BPE trained here.

It has the real layout of a SenseVoiceSmall directory (config.yaml, model.pt, bpe.model), so
funasr's ``AutoModel`` loads it the way it loads the real model from ``ASR_MODEL_DIR``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TAGS = [
    "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>", "<|NEUTRAL|>", "<|HAPPY|>", "<|SAD|>",
    "<|EMO_UNKNOWN|>", "<|Speech|>", "<|BGM|>", "<|Event_UNK|>", "<|withitn|>", "<|woitn|>",
]  # fmt: skip
ENCODER = {
    "output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2, "tp_blocks": 1,
    "dropout_rate": 0.0, "positional_dropout_rate": 0.0, "attention_dropout_rate": 0.0, "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}  # fmt: skip
CONFIG = {
    "model": "SenseVoiceSmall",
    "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
    "encoder": "SenseVoiceEncoderSmall",
    "encoder_conf": ENCODER,
    "tokenizer": "SentencepiecesTokenizer",
    "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
    "frontend": "WavFrontend",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "cmvn_file": None,
    },  # fmt: skip
}
CORPUS = ["hello world this is a tiny model", "the quick brown fox jumps over the lazy dog", "speech in a test"]


def build_tiny_sensevoice(directory: Path, *, always_say: str | None = None) -> Path:
    """Write the model; ``always_say`` biases its CTC layer so every frame decodes to that one token."""
    import funasr.models.sense_voice.model  # noqa: F401 (registers SenseVoiceSmall)
    import sentencepiece as spm
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_prefix=str(directory / "bpe"),
        vocab_size=60,
        user_defined_symbols=TAGS,
        model_type="bpe",
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
    )
    (directory / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    pieces = spm.SentencePieceProcessor(model_file=str(directory / "bpe.model"))
    torch.manual_seed(0)
    model = tables.model_classes.get("SenseVoiceSmall")(
        encoder=CONFIG["encoder"],
        encoder_conf=ENCODER,
        input_size=80 * 7,
        vocab_size=pieces.get_piece_size(),
        **CONFIG["model_conf"],
    )
    if always_say is not None:
        with torch.no_grad():
            model.ctc.ctc_lo.weight.zero_()
            model.ctc.ctc_lo.bias.fill_(-10.0)
            model.ctc.ctc_lo.bias[pieces.piece_to_id(always_say)] = 10.0
    torch.save(model.state_dict(), directory / "model.pt")
    return directory


VAD_OPTIONS = {
    "sample_rate": 16000, "detect_mode": 1, "snr_mode": 0, "max_end_silence_time": 800,
    "max_start_silence_time": 3000, "do_start_point_detection": True, "do_end_point_detection": True,
    "window_size_ms": 200, "sil_to_speech_time_thres": 150, "speech_to_sil_time_thres": 150,
    "speech_2_noise_ratio": 1.0, "do_extend": 1, "lookback_time_start_point": 200, "lookahead_time_end_point": 100,
    "max_single_segment_time": 60000, "snr_thres": -100.0, "noise_frame_num_used_for_snr": 100,
    "decibel_thres": -40.0, "speech_noise_thres": 0.6, "fe_prior_thres": 0.0001, "silence_pdf_num": 1,
    "sil_pdf_ids": [0], "speech_noise_thresh_low": -0.1, "speech_noise_thresh_high": 0.3,
    "output_frame_probs": False, "frame_in_ms": 10, "frame_length_ms": 25,
}  # fmt: skip
VAD_CONFIG = {
    "frontend": "WavFrontendOnline",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "dither": 0.0,
        "lfr_m": 5,
        "lfr_n": 1,
    },  # fmt: skip
    "model": "FsmnVADStreaming",
    "model_conf": VAD_OPTIONS,
    "encoder": "FSMN",
    "encoder_conf": {
        "input_dim": 400,
        "input_affine_dim": 16,
        "fsmn_layers": 1,
        "linear_dim": 16,
        "proj_dim": 8,
        "lorder": 4,
        "rorder": 0,
        "lstride": 1,
        "rstride": 0,
        "output_affine_dim": 16,
        "output_dim": 4,
    },  # fmt: skip
}


def build_tiny_fsmn_vad(directory: Path) -> Path:
    """A tiny fsmn-vad whose network always says "not silence", so its energy gate (decibel_thres,
    -40 dB here) alone tells speech from the digital silence between espeak-ng's sentences."""
    import funasr.models.fsmn_vad_streaming.model  # noqa: F401 (registers FsmnVADStreaming)
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(VAD_CONFIG))
    model = tables.model_classes.get("FsmnVADStreaming")(
        encoder="FSMN", encoder_conf=VAD_CONFIG["encoder_conf"], **VAD_OPTIONS
    )
    with torch.no_grad():
        model.encoder.out_linear2.linear.weight.zero_()
        model.encoder.out_linear2.linear.bias.copy_(torch.tensor([-10.0, 3.0, 3.0, 3.0]))  # pdf 0 is silence
    torch.save(model.state_dict(), directory / "model.pt")
    return directory
