"""A local Hugging Face causal language model as a ToEdit prior (``--prior hf:DIR``).

Needs the optional extra ``[hf]`` (torch, transformers). ``DIR`` holds a model and its tokenizer as
written by ``save_pretrained``; nothing is downloaded. The context is the model's maximum number of
positions (``max_position_embeddings`` or ``n_positions``), capped by the tokenizer's
``model_max_length`` and by ``--context``. Text is tokenised with the tokenizer's special tokens (a BOS
token, for models that use one, is the unscored first token), scored in float32 and decoded with special tokens skipped
and without clean-up of tokenisation spaces, so an unedited document decodes to its own text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, require
from .toedit import Scores


class HFPrior:
    def __init__(self, directory, batch_size: int = 8, device: str = "cpu", context: int | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging
        except ImportError:
            raise InputError("--prior hf:DIR needs torch and transformers: pip install 'linreg-collapse[hf]'") from None
        logging.disable_progress_bar()  # weight loading is quick; `lm edit` shows its own progress
        directory = Path(directory)
        require(directory.is_dir(), f"--prior hf:{directory}: not a directory")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            reason = str(err).splitlines()[0]
            raise InputError(f"--prior hf:{directory}: not a causal-LM directory ({reason})") from None
        self.model = model.float().to(device).eval()
        config = self.model.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        require(positions is not None, f"--prior hf:{directory}: the config states no maximum length")
        self.context = int(min(positions, self.tokenizer.model_max_length, context or positions))
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self.batch_size, self.device, self._torch = batch_size, device, torch

    def encode(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
        return np.asarray(ids, np.int64)

    def decode(self, tokens) -> str:
        return self.tokenizer.decode([int(t) for t in tokens], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    @staticmethod
    def editable(tokens: np.ndarray) -> np.ndarray:
        return np.ones(len(tokens), bool)

    def score_windows(self, batch: list[np.ndarray], top_k: int) -> list[Scores]:
        """Right-padded inputs window[:-1] with an attention mask; float32 log-softmax, top-k and the
        observed token's log-prob at every position."""
        torch = self._torch
        width = max(len(t) for t in batch) - 1
        inputs = torch.zeros((len(batch), width), dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.zeros((len(batch), width), dtype=torch.long)
        for i, tokens in enumerate(batch):
            n = len(tokens) - 1
            inputs[i, :n] = torch.as_tensor(tokens[:-1])
            targets[i, :n] = torch.as_tensor(tokens[1:])
            attention[i, :n] = 1
        with torch.no_grad():
            logits = self.model(input_ids=inputs.to(self.device), attention_mask=attention.to(self.device)).logits
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            top_lp, top_ids = torch.topk(log_probs, top_k, dim=-1)
            target_lp = torch.gather(log_probs, -1, targets.to(self.device)[..., None])[..., 0]
        top_lp, top_ids, target_lp = (x.cpu().numpy() for x in (top_lp, top_ids, target_lp))
        return [Scores(top_lp[i, : len(t) - 1], top_ids[i, : len(t) - 1].astype(np.int32),
                       target_lp[i, : len(t) - 1]) for i, t in enumerate(batch)]
