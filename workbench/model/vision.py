"""The vision-language side of a Glm4v checkpoint: its processor, its vision tower, its image tokens.

A GLM-4.1V checkpoint (AutoGLM-Phone-9B) turns chat messages and a screenshot into model inputs with
its own chat template (the tokenizer's), its image processor (``preprocessor_config.json``:
resize to a multiple of 28 px within min / max pixels, 14-px patches, 2x2 merge) and one
``<|image|>`` token per merged patch. transformers' ``Glm4vProcessor`` does exactly that, but it
also needs a video processor, which needs torchvision, which has no build for this torch
(2.13.0 CPU). `ScreenProcessor` composes the same three parts (the checkpoint's tokenizer and chat
template, ``AutoImageProcessor``) the way ``Glm4vProcessor`` does for images; where torchvision is
installed, tests/model/test_vision.py checks that both give the same inputs.

    processor = load_processor(folder)
    inputs = processor(messages, [image])   # input_ids, attention_mask, pixel_values, image_grid_thw, mm_token_type_ids
"""
from __future__ import annotations

import io
import os
import pathlib

import torch
from torch import nn

IMAGE_TOKENS = ("<|begin_of_image|>", "<|image|>", "<|end_of_image|>",
                "<|begin_of_video|>", "<|video|>", "<|end_of_video|>")
PREFIX_TOKENS = ("[gMASK]", "<sop>")
ANSWER_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
PROCESSOR_FILE = "preprocessor_config.json"
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")

# GLM-4.1V's chat layout: [gMASK]<sop>, then <|role|> turns; a user turn's image is
# <|begin_of_image|><|image|><|end_of_image|>; the generation prompt is "<|assistant|>\n".
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for m in messages %}"
    "{%- if m.role == 'system' %}<|system|>\n{{ m.content }}"
    "{%- elif m.role == 'user' %}<|user|>{{ '\\n' }}"
    "{%- if m.content is string %}{{ m.content }}{%- else %}{%- for c in m.content %}"
    "{%- if c.type == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{%- elif c.type == 'text' %}{{ c.text }}{%- endif %}{%- endfor %}{%- endif %}"
    "{%- elif m.role == 'assistant' %}<|assistant|>\n{{ m.content }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>{{ '\\n' }}{%- endif %}"
)


class ProcessorError(ValueError):
    """A checkpoint's processor files are missing or unusable, or a screenshot cannot be read."""


class ScreenProcessor:
    """Chat messages + screenshots -> Glm4v model inputs (transformers' Glm4vProcessor, images only).

    Args:
        tokenizer: the checkpoint's tokenizer, with its chat template and GLM-4.1V's image tokens.
        image_processor: the checkpoint's image processor (Glm4vImageProcessor).
    """

    def __init__(self, tokenizer, image_processor):
        missing = [t for t in ("<|image|>",) + PREFIX_TOKENS if tokenizer.convert_tokens_to_ids(t) in
                   (None, tokenizer.unk_token_id)]
        if missing:
            raise ProcessorError(f"the tokenizer has no {missing[0]} token; it is not a GLM-4.1V tokenizer")
        if not getattr(tokenizer, "chat_template", None):
            raise ProcessorError("the tokenizer has no chat template; copy chat_template.jinja from the checkpoint")
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self.image_token_id = tokenizer.convert_tokens_to_ids("<|image|>")
        self.merge = image_processor.merge_size

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    def render(self, messages) -> str:
        """The prompt text the chat template makes of `messages` (one <|image|> per image)."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def __call__(self, messages, images) -> dict:
        """Model inputs (batch 1) for `messages` whose image entries are `images` (PIL images), in order."""
        text = self.render(messages)
        parts = text.split("<|image|>")
        if len(parts) - 1 != len(images):
            raise ProcessorError(f"the messages hold {len(parts) - 1} images but {len(images)} were given")
        out = {}
        if images:
            out = dict(self.image_processor(images=list(images), return_tensors="pt"))
            counts = (out["image_grid_thw"].prod(-1) // self.merge ** 2).tolist()
            text = parts[0] + "".join("<|image|>" * n + rest for n, rest in zip(counts, parts[1:]))
        ids = torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)])
        out.update(input_ids=ids, attention_mask=torch.ones_like(ids),
                   mm_token_type_ids=(ids == self.image_token_id).to(torch.int32))
        return out

    def image_tokens(self, image) -> int:
        """How many <|image|> tokens a screenshot becomes (its merged patches)."""
        grid = self.image_processor(images=[image], return_tensors="pt")["image_grid_thw"]
        return int(grid.prod(-1).sum()) // self.merge ** 2


def answer_ids(processor: ScreenProcessor, step) -> list[int]:
    """Token ids of a step's target answer as the agent keeps it (<think></think><answer>..</answer>) + EOS."""
    from ..task.open_autoglm import assistant_turn

    return processor.tokenizer.encode(assistant_turn(step.target), add_special_tokens=False) + [processor.eos_token_id]


def screen_inputs(processor: ScreenProcessor, step, *, apps=None, system: str | None = None, lang: str = "en",
                  with_target: bool = False) -> dict:
    """Model inputs of one screenshot step in the open-autoglm prompt mode (`workbench.task.open_autoglm`).

    Args:
        processor: the checkpoint's ScreenProcessor.
        step: a Step with a screenshot.
        apps: the apps of the step's earlier turns (None: its own app).
        system, lang: the system prompt (None: the workbench's in `lang`).
        with_target: append the target answer but its EOS (teacher forcing, calibration).
    Raises:
        ProcessorError: the step has no screenshot or it cannot be read.
    """
    from ..task.open_autoglm import messages

    if step.screenshot is None:
        raise ProcessorError(f"step {step.episode_id}/{step.step} has no screenshot; a vision-language model reads "
                             f"screenshots (episodes with a 'screenshot' field, see data/README.md)")
    x = processor(messages(step, system=system, lang=lang, apps=apps), [open_image(step.screenshot)])
    return with_tokens(x, answer_ids(processor, step)[:-1]) if with_target else x


def with_tokens(inputs: dict, tokens) -> dict:
    """A copy of a step's inputs with text `tokens` appended (teacher forcing: ids, mask and token types grown)."""
    ids = inputs["input_ids"]
    extra = torch.tensor([list(tokens)], dtype=ids.dtype, device=ids.device)
    mm = inputs["mm_token_type_ids"]
    out = dict(inputs, input_ids=torch.cat([ids, extra], 1),
               mm_token_type_ids=torch.cat([mm, torch.zeros_like(extra, dtype=mm.dtype)], 1))
    out["attention_mask"] = torch.ones_like(out["input_ids"])
    return out


def open_image(path: str | os.PathLike):
    """A screenshot as an RGB PIL image; ProcessorError naming the file if it is missing or not an image."""
    from PIL import Image, UnidentifiedImageError

    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise ProcessorError(f"screenshot not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ProcessorError(f"screenshot {path} is not a readable image ({e}); render or capture it again") from None


def load_processor(folder: str | os.PathLike) -> ScreenProcessor:
    """The processor of a Glm4v checkpoint folder (or an embedded model's name, "open-autoglm-tiny-vl").

    Raises:
        ProcessorError: naming the missing file (preprocessor_config.json, a chat template) and the fix.
    """
    from transformers import AutoImageProcessor, AutoTokenizer

    from .load import embedded_path

    folder = pathlib.Path(embedded_path(folder)).expanduser()
    if not (folder / PROCESSOR_FILE).is_file():
        raise ProcessorError(f"{folder} has no {PROCESSOR_FILE}, the image processor of a vision-language "
                             f"checkpoint; copy it from the original checkpoint, or load the model text-only "
                             f"(load_model(folder, vision=False); on the command line --text-only)")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ProcessorError(f"{folder} has no chat template (chat_template.jinja); copy it from the original "
                             f"checkpoint")
    try:
        image_processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ProcessorError(f"{folder / PROCESSOR_FILE} is not a usable image processor config ({e}); copy it "
                             f"from the original checkpoint") from None
    return ScreenProcessor(tokenizer, image_processor)


def add_vision_tokens(tokenizer) -> dict:
    """Add GLM-4.1V's prefix, image and answer tokens and its chat template to a tokenizer (in place);
    returns {token: id} of the image tokens, for the model config."""
    tokenizer.add_tokens(list(PREFIX_TOKENS + IMAGE_TOKENS + ANSWER_TOKENS), special_tokens=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    return {t: tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS}


def image_processor_for(max_image_tokens: int, min_image_tokens: int = 4):
    """GLM-4.1V's image processor with a pixel budget of `max_image_tokens` merged 28x28 patches."""
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    return Glm4vImageProcessorPil(size={"shortest_edge": 28 * 28 * min_image_tokens,
                                        "longest_edge": 28 * 28 * max_image_tokens})


def vision_tower(model: nn.Module) -> nn.Module | None:
    """The vision encoder of a Glm4v model (None for a text model or one loaded text-only)."""
    visual = getattr(getattr(model, "model", None), "visual", None)
    return visual if isinstance(visual, nn.Module) and any(True for _ in visual.parameters()) else None


def is_vision_model(model: nn.Module) -> bool:
    """Whether `model` reads images (a Glm4v with its vision tower)."""
    return vision_tower(model) is not None
