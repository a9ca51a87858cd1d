"""Build a tiny Qwen2-VL in a directory: random weights from a small config, a BPE tokenizer trained
here, and the real Qwen2-VL image + video processors. Saved the way a downloaded model is laid out, so the
vlm engine loads it through its real code (``AutoModelForImageTextToText`` / ``AutoProcessor``)."""

from __future__ import annotations

from pathlib import Path

# Qwen2-VL's own chat template, trimmed to what the engine sends (images and text).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CORPUS = [
    "a red square on a white background",
    "a blue circle in the clear sky",
    "the picture shows a small cat sitting on a chair",
    "this image is a photo of a dog running on green grass",
    "描述这幅图 这是一张照片 图中有一只猫",
]

# Larger than the usual 0.02 so that random weights let the image sway what the model says.
INIT_RANGE = 0.2


def train_tokenizer():  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def text_config(tokenizer, ids: dict[str, int], family: str) -> dict:
    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        # head_dim 16: the three multimodal rotary sections (time, height, width) add up to 16 / 2
        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 2, 4], "rope_theta": 10000.0},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "initializer_range": INIT_RANGE,
    }
    if family == "qwen3_vl":
        config["head_dim"] = 16
        config["rope_parameters"]["mrope_interleaved"] = True
    return config


def vision_config(family: str) -> dict:
    common = {"num_heads": 2, "spatial_merge_size": 2, "temporal_patch_size": 2, "initializer_range": INIT_RANGE}
    if family == "qwen2_vl":
        return {**common, "depth": 1, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2, "patch_size": 14}
    if family == "qwen2_5_vl":
        return {
            **common,
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "out_hidden_size": 64,
            "patch_size": 14,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        }
    return {
        **common,
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "out_hidden_size": 64,
        "patch_size": 16,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }


def build_tiny_qwen_vl(directory: Path, family: str = "qwen2_vl", seed: int = 0) -> Path:
    """``family``: qwen2_vl, qwen2_5_vl or qwen3_vl."""
    import torch
    import transformers

    classes = {
        "qwen2_vl": ("Qwen2VLConfig", "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor", "Qwen2VLVideoProcessor"),
        "qwen2_5_vl": (
            "Qwen2_5_VLConfig",
            "Qwen2_5_VLForConditionalGeneration",
            "Qwen2_5_VLProcessor",
            "Qwen2VLVideoProcessor",
        ),
        "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor", "Qwen3VLVideoProcessor"),
    }
    config_class, model_class, processor_class, video_class = (getattr(transformers, n) for n in classes[family])
    tokenizer = train_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    patch = 16 if family == "qwen3_vl" else 14
    merged = patch * 2  # one image token stands for merged x merged pixels
    processor = processor_class(
        # small images: 4 to 64 image tokens keep the vision tower cheap
        image_processor=transformers.Qwen2VLImageProcessor(
            patch_size=patch, min_pixels=merged * merged * 4, max_pixels=merged * merged * 64
        ),
        video_processor=video_class(patch_size=patch),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    config = config_class(
        text_config=text_config(tokenizer, ids, family),
        vision_config=vision_config(family),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = model_class(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


if __name__ == "__main__":  # python -m tests.vlm.tiny_qwen_vl DIR: a random-weights model to smoke-test with
    import sys

    print(build_tiny_qwen_vl(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-qwen2-vl")))
