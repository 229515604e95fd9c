"""``code_lm``: a small LLaMA-shaped causal LM trained here, on text every machine has.

The corpus is the Python standard library's own ``.py`` files (``sysconfig``'s ``stdlib`` folder,
without ``site-packages``, ``test``/``tests`` folders and ``idlelib``), split **by file** into
train / validation / test by a hash of each file's relative path (10 % validation, 10 % test), so
the split does not move when files are added. A byte-level BPE tokenizer is trained on the train
split with ``tokenizers``; a ``transformers`` ``LlamaForCausalLM`` (RMSNorm, SwiGLU, grouped-query
attention) is trained on it for a fixed number of steps from a seed. Nothing is downloaded.

Everything is cached under ``<repo>/.sparsim-cache/code_lm/<key>/`` (``SPARSIM_CACHE`` moves the
root), where ``key`` hashes what decides the result: the corpus files' bytes and names, the
:class:`CodeLMConfig` (seed included), this module's :data:`RECIPE_VERSION` and the versions of
torch, transformers and tokenizers. The folder is a ``save_pretrained`` model and tokenizer plus
``tokens-{train,validation,test}.npy`` and ``meta.json`` (perplexities, unigram baseline, timings).

Perplexity (:func:`perplexity`) is ``exp`` of the mean next-token negative log-likelihood over
non-overlapping ``seq_len`` windows of a split's token stream (files joined by the end-of-text
token). A split's evaluation uses at most ``eval_tokens`` of it: that many windows evenly spread
over the stream (all of it when it is shorter), the same windows for every model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError

#: Bumped when the recipe (corpus filter, split rule, tokenizer, training loop) changes meaning.
RECIPE_VERSION = 1
SPLITS = ("train", "validation", "test")
EOT = "<|endoftext|>"
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}


@dataclass(frozen=True)
class CodeLMConfig:
    """What decides a trained ``code_lm`` (all of it goes into the cache key).

    Widths are multiples of 8 so every N:M with M in {4, 8} divides each Linear's input dimension.
    """
    vocab_size: int = 2048
    hidden_size: int = 192
    intermediate_size: int = 512
    layers: int = 4
    heads: int = 6
    kv_heads: int = 2
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 300
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    seed: int = 0
    max_files: int = 0          # 0: every corpus file; else the first N by path (tests)

    def replace(self, **kw) -> "CodeLMConfig":
        return dataclasses.replace(self, **kw)


#: The benchmark's and the zoo's model.
DEFAULT = CodeLMConfig()
#: The tests' model: trains in seconds on a slice of the corpus.
TINY = CodeLMConfig(vocab_size=384, hidden_size=64, intermediate_size=128, layers=2, heads=4, kv_heads=2,
                    seq_len=64, batch_size=8, steps=60, lr=5e-3, warmup_steps=6, max_files=40)


# ---------------------------------------------------------------------------------------- corpus
def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """``(relative path, path)`` of the corpus files, sorted by relative path."""
    root = Path(root or stdlib_root())
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".py"):
                p = Path(dirpath) / f
                out.append((p.relative_to(root).as_posix(), p))
    out.sort(key=lambda t: t[0])
    if not out:
        raise ModelNotFoundError(f"code_lm: no .py files under the standard library folder {root}")
    return out


def split_of(rel: str) -> str:
    """The split a file belongs to: a hash of its relative path, 10 % validation, 10 % test."""
    h = int(hashlib.sha256(rel.encode()).hexdigest()[:8], 16) % 10
    return "validation" if h == 0 else "test" if h == 1 else "train"


def _read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", errors="replace")


def corpus(cfg: CodeLMConfig, root: Path | None = None) -> tuple[dict[str, list[str]], str]:
    """The split texts ``{split: [file text, ...]}`` and the corpus hash (names and bytes)."""
    files = corpus_files(root)
    if cfg.max_files:
        # a spread of the corpus, not its first folder: every k-th file
        step = max(1, len(files) // cfg.max_files)
        files = files[::step][:cfg.max_files]
    h = hashlib.sha256()
    texts: dict[str, list[str]] = {s: [] for s in SPLITS}
    for rel, p in files:
        data = p.read_bytes()
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        texts[split_of(rel)].append(data.decode("utf-8", errors="replace"))
    for s in SPLITS:
        if not texts[s]:
            raise ModelNotFoundError(f"code_lm: the {s} split is empty ({len(files)} corpus files)")
    return texts, h.hexdigest()


# ---------------------------------------------------------------------------------------- cache key
def _versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("torch", "transformers", "tokenizers")}


def cache_root() -> Path:
    env = os.environ.get("SPARSIM_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".sparsim-cache"


def cache_key(cfg: CodeLMConfig, corpus_hash: str) -> str:
    doc = {"recipe": RECIPE_VERSION, "config": dataclasses.asdict(cfg), "corpus": corpus_hash,
           "versions": _versions()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2 style pre-tokenization) trained on ``texts``, as a
    ``PreTrainedTokenizerFast`` whose end-of-text token is :data:`EOT`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT, bos_token=EOT, unk_token=EOT)


def encode(tokenizer, texts: list[str]) -> np.ndarray:
    """Files joined by the end-of-text token, as one int32 stream."""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    ids = tokenizer._tokenizer.encode_batch(texts)
    out = []
    for e in ids:
        out.append(np.asarray(e.ids, dtype=np.int32))
        out.append(np.array([eot], dtype=np.int32))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------- model
def llama_config(cfg: CodeLMConfig, vocab_size: int):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                       num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                       num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.seq_len,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu",
                       bos_token_id=0, eos_token_id=0, pad_token_id=0)


def eval_windows(tokens: np.ndarray, seq_len: int, eval_tokens: int | None) -> np.ndarray:
    """``(W, seq_len + 1)`` non-overlapping windows of ``tokens`` (input + its next-token targets):
    all of them, or ``eval_tokens // seq_len`` evenly spread."""
    n = (len(tokens) - 1) // seq_len
    if n < 1:
        raise ModelNotFoundError(f"perplexity: {len(tokens)} tokens is less than one window of {seq_len + 1}")
    starts = np.arange(n) * seq_len
    if eval_tokens is not None and eval_tokens // seq_len < n:
        k = max(1, eval_tokens // seq_len)
        starts = starts[np.linspace(0, n - 1, k).round().astype(np.int64)]
    return np.stack([tokens[s:s + seq_len + 1] for s in starts]).astype(np.int64)


def mean_nll(model, windows: np.ndarray, batch: int = 16, progress: bool = False, desc: str = "perplexity") -> float:
    """Mean next-token negative log-likelihood (nats) of ``model`` over ``windows`` (see :func:`eval_windows`)."""
    import torch
    from tqdm.auto import tqdm
    total, count = 0.0, 0
    with torch.no_grad():
        for i in tqdm(range(0, len(windows), batch), desc=desc, unit="batch", disable=not progress, leave=False):
            w = torch.from_numpy(windows[i:i + batch])
            logits = model(input_ids=w[:, :-1]).logits.float()
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                                                    reduction="sum")
            total += float(nll)
            count += w[:, 1:].numel()
    return total / count


def perplexity(model, windows: np.ndarray, batch: int = 16, progress: bool = False) -> float:
    return math.exp(mean_nll(model, windows, batch=batch, progress=progress))


def unigram_perplexity(train: np.ndarray, windows: np.ndarray, vocab_size: int) -> float:
    """Perplexity of the add-one-smoothed unigram distribution of the train tokens on ``windows``' targets."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return math.exp(-float(logp[windows[:, 1:].ravel()].mean()))


def _train(cfg: CodeLMConfig, vocab_size: int, train: np.ndarray, progress: bool):
    import torch
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(llama_config(cfg, vocab_size))
        g = torch.Generator().manual_seed(cfg.seed)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))

        def lr_at(step):   # linear warm-up, then cosine to 10 %
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        data = torch.from_numpy(train.astype(np.int64))
        model.train()
        bar = tqdm(range(cfg.steps), desc="training code_lm", unit="step", disable=not progress, leave=False)
        for _ in bar:
            starts = torch.randint(0, len(data) - cfg.seq_len - 1, (cfg.batch_size,), generator=g)
            x = torch.stack([data[s:s + cfg.seq_len + 1] for s in starts.tolist()])
            loss = _loss(model, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
        model.eval()
    return model


def _loss(model, x):
    import torch
    logits = model(input_ids=x[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


# ---------------------------------------------------------------------------------------- build / load
@dataclass
class CodeLM:
    """A trained ``code_lm``: the model (eval mode), its tokenizer, the token streams of the three
    splits, the cache folder and ``meta`` (config, perplexities, unigram baseline, seconds)."""
    model: object
    tokenizer: object
    tokens: dict
    folder: Path
    meta: dict
    config: CodeLMConfig

    def windows(self, split: str, eval_tokens: int | None = None) -> np.ndarray:
        if split not in SPLITS:
            raise ModelNotFoundError(f"code_lm: split must be one of {SPLITS}, got {split!r}")
        return eval_windows(self.tokens[split], self.config.seq_len, eval_tokens)


#: Tokens of the test split that ``meta.json``'s perplexities are measured on.
META_EVAL_TOKENS = 65536


def load(cfg: CodeLMConfig = DEFAULT, progress: bool = False, root: Path | None = None) -> CodeLM:
    """The trained model of ``cfg``: from the cache, or trained now (then cached)."""
    import torch
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast
    texts, chash = corpus(cfg, root)
    folder = cache_root() / "code_lm" / cache_key(cfg, chash)
    if not (folder / "meta.json").is_file():
        _build(cfg, texts, chash, folder, progress)
    meta = json.loads((folder / "meta.json").read_text())
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    tokens = {s: np.load(folder / f"tokens-{s}.npy") for s in SPLITS}
    return CodeLM(model, tok, tokens, folder, meta, cfg)


def _build(cfg: CodeLMConfig, texts, chash: str, folder: Path, progress: bool) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    tok = train_tokenizer(texts["train"], cfg.vocab_size)
    vocab = len(tok)
    tokens = {s: encode(tok, texts[s]) for s in SPLITS}
    t1 = time.perf_counter()
    model = _train(cfg, vocab, tokens["train"], progress)
    t2, c2 = time.perf_counter(), time.process_time()
    test = eval_windows(tokens["test"], cfg.seq_len, META_EVAL_TOKENS)
    val = eval_windows(tokens["validation"], cfg.seq_len, META_EVAL_TOKENS)
    meta = {"config": dataclasses.asdict(cfg), "corpus_sha256": chash, "recipe": RECIPE_VERSION,
            "versions": _versions(), "vocab_size": vocab,
            "parameters": sum(p.numel() for p in model.parameters()),
            "tokens": {s: int(len(tokens[s])) for s in SPLITS},
            "files": {s: len(texts[s]) for s in SPLITS},
            "eval_tokens": META_EVAL_TOKENS,
            "test_perplexity": perplexity(model, test, progress=progress),
            "validation_perplexity": perplexity(model, val, progress=progress),
            "unigram_test_perplexity": unigram_perplexity(tokens["train"], test, vocab),
            "seconds": {"tokenizer": t1 - t0, "training": t2 - t1, "cpu_total_to_trained": c2 - c0,
                        "threads": torch_threads()}}
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    for s in SPLITS:
        np.save(tmp / f"tokens-{s}.npy", tokens[s])
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    try:
        os.replace(tmp, folder)
    except OSError:            # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)


def torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def build(seed: int = 0, batch: int = 1):
    """The zoo's ``code_lm``: the trained :data:`DEFAULT` model with training seed ``seed`` and, as
    example inputs, ``batch`` windows of ``seq_len`` validation tokens."""
    import torch
    lm = load(DEFAULT.replace(seed=seed), progress=True)
    w = lm.windows("validation")[:batch, :-1]
    if len(w) < batch:
        raise ModelNotFoundError(f"model 'code_lm': batch {batch} is more than the {len(w)} validation windows")
    return lm.model, (torch.from_numpy(w),)
