"""Tokenizers for the miniature models, trained locally with the `tokenizers` library (no downloads).

Byte-level BPE throughout, so any text (including what a random model generates) round-trips.
The special-token layout mirrors the real tokenizers: RoBERTa's <s>=0 <pad>=1 </s>=2, CLIP's
start/end-of-text, and for the LLaMA-style chat models <unk>/<s>/</s> up front with <image>, <video>
and <pad> registered as added special tokens (otherwise they would split into byte pieces and the
placeholder count would be wrong). The Qwen2-VL one has Qwen's chat and vision tokens instead.
"""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .templates import template_texts

# A small English corpus close to what the models will see: chat prompts, templates, reaction talk.
_CORPUS = [
    "USER: <video>\nDescribe the video. ASSISTANT:",
    "USER: <video>\nDescribe the reaction of the subject in the video. ASSISTANT:",
    "USER: <image>\nDescribe the image. ASSISTANT:",
    "Can you assign a score between 0 and 1 to each of these emotions based on what is expressed by "
    "the subject in the video: adoration, amusement, anxiety, disgust, emphatic pain, fear and surprise?",
    "The video shows a person sitting in front of a camera and reacting to something on a screen.",
    "The subject smiles, laughs, frowns, looks surprised, covers the mouth and turns away in fear.",
    "A woman with long hair is watching a video and her face shows amusement and joy.",
    "A man wearing glasses looks anxious and nervous, then he relaxes and smiles.",
    "The person appears disgusted, grimaces and shakes the head; the lighting is dim.",
    "adoration: 0.2, amusement: 0.7, anxiety: 0.1, disgust: 0.0, empathic pain: 0.3, fear: 0.1, surprise: 0.5",
] + template_texts()


def _train_bpe(specials: list[str], vocab_size: int, extra: list[str] | None = None) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((_CORPUS + list(extra or [])) * 4, trainer=trainer)
    return tok


def llm_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """LLaMA-style: <s> prepended, no </s> appended; <image>, <video>, <pad> are the last three ids."""
    tok = _train_bpe(["<unk>", "<s>", "</s>"], vocab_size)
    tok.add_special_tokens(["<image>", "<video>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens=["<image>", "<video>"],
        padding_side="left",  # generation pads on the left
        model_max_length=4096,
    )


def roberta_tokenizer(vocab_size: int = 500) -> PreTrainedTokenizerFast:
    """RoBERTa-style: <s> text </s>, pad id 1."""
    tok = _train_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], vocab_size)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        padding_side="right",
        model_max_length=128,
    )


def clip_tokenizer(vocab_size: int = 500) -> PreTrainedTokenizerFast:
    """CLIP-style: start and end of text around the ids, padded with end-of-text as CLIP does."""
    tok = _train_bpe(["<|startoftext|>", "<|endoftext|>"], vocab_size)
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        padding_side="right",
        model_max_length=77,
    )


QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                 "<|image_pad|>", "<|video_pad|>"]


def qwen_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Qwen2-style: no BOS; <|endoftext|> pads, <|im_end|> ends a turn; chat and vision tokens are added specials."""
    tok = _train_bpe(["<|endoftext|>"], vocab_size, extra=[
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|video_pad|><|vision_end|>Describe the video.<|im_end|>\n<|im_start|>assistant\n"])
    tok.add_special_tokens(QWEN_SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=QWEN_SPECIALS,
        padding_side="left",
        model_max_length=4096,
    )


OMNI_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|audio_bos|>", "<|audio_eos|>",
                 "<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>"]


def omni_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Qwen2.5-Omni-style: Qwen2's layout with Omni's media tokens (<|VIDEO|>, <|AUDIO|>, their bos/eos)."""
    tok = _train_bpe(["<|endoftext|>"], vocab_size, extra=[
        "<|im_start|>system\nYou are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
        "perceiving auditory and visual inputs, as well as generating text and speech.<|im_end|>\n"
        "<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|>Describe the video.<|im_end|>\n"
        "<|im_start|>assistant\n"])
    tok.add_special_tokens(OMNI_SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        # Named as in the Omni checkpoint's tokenizer config: `Qwen2_5OmniProcessor` reads them by these names.
        extra_special_tokens={"image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
                              "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
                              "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"},
        padding_side="left",
        model_max_length=32768,
    )
