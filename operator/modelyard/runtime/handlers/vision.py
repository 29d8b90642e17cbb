"""Vision-language chat (``QwenVLChat`` in the model-server document), text turns only for now.

Loads ``AutoModelForImageTextToText`` with its processor's tokenizer and serves text
messages through the causal-LM machinery; image parts are refused with a 400 that points to
``--engine vllm``, which serves images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.runtime import errors
from modelyard.runtime.handlers import chat


class VisionChatModel(chat.TextChatModel):
    capabilities = ["chat-completion", "vision"]
    model_class = "AutoModelForImageTextToText"

    def _chat_text(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        for message in messages:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") != "text" for p in content):
                raise errors.UnsupportedError(
                    "image inputs are not served by the transformers engine yet; deploy with --engine vllm",
                    param="messages",
                )
        return super()._chat_text(messages, add_generation_prompt, continue_final_message, tools)
