"""One name per measured quantity: key, label, unit, a one-line help, and the record it belongs to.

Every record the kit writes (`Generation.to_dict()`, `LoadedModel.to_dict()`, `compare()` columns,
monitor samples, load-test rows) uses these keys; tables, plots and widget headers read their labels
from here, so a number is called the same everywhere a learner meets it.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"  # the unit of a column that holds words, not a number


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # short, for axis titles and table headers
    unit: str  # "s", "bytes", "tokens/s", "tokens", "nats/token", "" (a ratio or a count), TEXT
    help: str
    scale: float = 1.0  # value × scale is what `label` shows (bytes → MB, s → ms)
    group: str = ""  # the record it belongs to: "generation", "load", "quality", ... ("" = several)

    def show(self, value) -> float:
        return value * self.scale

    @property
    def numeric(self) -> bool:
        return self.unit != TEXT


def _group(name: str, *metrics: Metric) -> tuple[Metric, ...]:
    return tuple(Metric(m.key, m.label, m.unit, m.help, m.scale, name) for m in metrics)


_METRICS = (
    _group(
        "generation",
        Metric("text", "text", TEXT, "The generated text."),
        Metric(
            "prompt_tokens",
            "prompt tokens",
            "tokens",
            "Tokens in the prompt after the chat template.",
        ),
        Metric(
            "new_tokens",
            "new tokens",
            "tokens",
            "Tokens generated (an end-of-sequence token included).",
        ),
        Metric(
            "ttft_s",
            "TTFT (ms)",
            "s",
            "Time to first token: the call until the first new token "
            "(chat template, tokenization, prefill, network for a remote engine).",
            1e3,
        ),
        Metric(
            "prefill_s",
            "prefill (ms)",
            "s",
            "Engine start until the first new token: the prompt's forward "
            "pass and the first sampling step.",
            1e3,
        ),
        Metric(
            "prefill_tokens_per_s",
            "prefill tokens/s",
            "tokens/s",
            "Prompt tokens ÷ prefill time (engine start until the first new token): how fast the "
            "prompt was read. For a remote engine the network and the server's queue are in it.",
        ),
        Metric(
            "decode_tokens_per_s",
            "decode tokens/s",
            "tokens/s",
            "New tokens after the first, divided by the time between the first and the last token.",
        ),
        Metric("total_s", "total (s)", "s", "The whole call, from the prompt to the last token."),
        Metric(
            "peak_memory_bytes",
            "peak memory (MB)",
            "bytes",
            "Peak memory while generating; "
            "`peak_memory_kind` says what it counts (process RSS, CUDA allocated, "
            "or absent for a remote engine).",
            1e-6,
        ),
        Metric(
            "peak_memory_kind",
            "peak memory counts",
            TEXT,
            "What `peak_memory_bytes` counts (llamalab.core.memory).",
        ),
        Metric(
            "peak_anon_bytes",
            "peak anonymous (MB)",
            "bytes",
            "Peak anonymous resident memory while generating (RssAnon, 20 Hz samples): what the "
            "process allocated, without mapped files (CPU only).",
            1e-6,
        ),
        Metric(
            "peak_file_bytes",
            "peak file-backed (MB)",
            "bytes",
            "Peak file-backed resident memory while generating (RssFile): mapped files such as "
            "llama.cpp's GGUF or a bf16 checkpoint's weights, and shared libraries (CPU only).",
            1e-6,
        ),
        Metric(
            "peak_container_bytes",
            "peak container (MB)",
            "bytes",
            "Peak of what the container counts against its limit while generating: its cgroup's "
            "usage minus inactive file pages, every process in it and the file pages they read.",
            1e-6,
        ),
        Metric(
            "finish_reason",
            "finish",
            TEXT,
            "Why it ended: stop (end of sequence), length (max_new_tokens) or "
            "stopped (asked to, or a deadline).",
        ),
    )
    + _group(
        "load",
        Metric(
            "backend",
            "backend",
            TEXT,
            "The backend module that loaded the weights (llamalab/runtime/backends).",
        ),
        Metric(
            "engine",
            "engine",
            TEXT,
            "The engine that runs them: transformers, llama.cpp, openai-compatible, ollama.",
        ),
        Metric("device", "device", TEXT, "cpu, cuda, cuda:N, or remote."),
        Metric(
            "load_s",
            "load (s)",
            "s",
            "Seconds to load the weights (and quantize them, for int8/nf4).",
        ),
        Metric(
            "weights_memory_bytes",
            "weights in memory (MB)",
            "bytes",
            "Bytes of the weights and buffers as they sit in memory, counted tensor by tensor.",
            1e-6,
        ),
        Metric(
            "weights_disk_bytes",
            "weights on disk (MB)",
            "bytes",
            "Bytes of the weight files the model was loaded from.",
            1e-6,
        ),
        Metric(
            "load_memory_delta_bytes",
            "memory after load (MB)",
            "bytes",
            "How much memory the load left "
            "allocated; `load_memory_kind` says what it counts (process RSS or CUDA allocated).",
            1e-6,
        ),
        Metric(
            "load_peak_bytes",
            "load peak (MB)",
            "bytes",
            "Peak growth of the same measure during the load (quantize-on-load "
            "passes a bf16 copy).",
            1e-6,
        ),
        Metric(
            "load_anon_bytes",
            "anonymous after load (MB)",
            "bytes",
            "Anonymous resident memory (RssAnon) the load left: what the process allocated (CPU).",
            1e-6,
        ),
        Metric(
            "load_file_bytes",
            "file-backed after load (MB)",
            "bytes",
            "File-backed resident memory (RssFile) the load left: mapped weights (a GGUF, a bf16 "
            "checkpoint); after int8/nf4 none, the checkpoint is released (CPU).",
            1e-6,
        ),
        Metric(
            "load_anon_peak_bytes",
            "anonymous load peak (MB)",
            "bytes",
            "Peak growth of anonymous resident memory during the load (20 Hz samples, CPU).",
            1e-6,
        ),
        Metric(
            "load_container_bytes",
            "container after load (MB)",
            "bytes",
            "What the container counts after the load: its cgroup's usage minus inactive file "
            "pages (all its processes, and the page cache of the files read).",
            1e-6,
        ),
        Metric(
            "estimated_weights_bytes",
            "estimated weights (MB)",
            "bytes",
            "The estimator's weight bytes for this model and scheme (llamalab.estimate).",
            1e-6,
        ),
        Metric(
            "estimate_error_pct",
            "estimate error (%)",
            "%",
            "(estimated − measured weights) ÷ measured weights × 100.",
        ),
        Metric(
            "load_memory_kind", "load memory counts", TEXT, "What the load's memory figures count."
        ),
        Metric(
            "quantized_at",
            "quantized at",
            TEXT,
            "none (a dtype cast at load), load (quantized while loading) or "
            "file (the file holds the stored format): catalog/schemes.toml.",
        ),
        Metric("path", "path", TEXT, "The weights' folder or file, or a server's URL."),
    )
    + _group(
        "quality",
        Metric(
            "perplexity",
            "perplexity per token",
            "",
            "exp(mean negative log-likelihood per token) on the "
            "held-out text (`ppl_text`); lower is better.",
        ),
        Metric(
            "kl_vs_reference",
            "KL vs reference (nats/token)",
            "nats/token",
            "Mean KL(reference ‖ this scheme) of next-token distributions on the same positions.",
        ),
        Metric(
            "top1_vs_reference",
            "top-1 agreement",
            "",
            "Share of positions where this scheme and the "
            "reference pick the same most likely token.",
        ),
        Metric(
            "ppl_text",
            "perplexity text",
            TEXT,
            "The held-out text perplexity and KL were scored on.",
        ),
        Metric(
            "ppl_tokens", "tokens scored", "tokens", "Target tokens scored for perplexity and KL."
        ),
        Metric(
            "ppl_window",
            "scoring window",
            "tokens",
            "Tokens per scored window (each target scored once).",
        ),
        Metric("ppl_stride", "scoring stride", "tokens", "Tokens between scored windows' starts."),
        Metric(
            "reference", "KL reference", TEXT, "The scheme KL and top-1 agreement compare against."
        ),
        Metric("quality_s", "quality (s)", "s", "Seconds spent scoring perplexity and KL."),
        Metric(
            "quality_error",
            "quality error",
            TEXT,
            "Why the quality columns are empty (e.g. an engine without logits).",
        ),
        Metric(
            "task",
            "task",
            TEXT,
            "What the task score measures: a scorer on the learner's own data (llamalab.evaluate).",
        ),
        Metric(
            "task_score",
            "task score",
            "",
            "Mean score of the replies on the task, from 0 to 1 (for right/wrong scorers: the "
            "share right); greedy replies, higher is better.",
        ),
        Metric(
            "task_score_low",
            "task score 95 % low",
            "",
            "Lower end of the task score's 95 % interval: Wilson's for right/wrong scores, a "
            "percentile bootstrap for fractional ones.",
        ),
        Metric(
            "task_score_high",
            "task score 95 % high",
            "",
            "Upper end of the task score's 95 % interval (the same method as its lower end).",
        ),
        Metric("task_n", "task examples", "", "Examples scored for the task score."),
        Metric(
            "task_interval",
            "task interval",
            TEXT,
            "How the task score's interval was computed: wilson (0/1 scores) or bootstrap.",
        ),
        Metric(
            "task_failed",
            "task examples failed",
            "",
            "Examples whose reply could not be generated (not scored; each row says why).",
        ),
        Metric("task_s", "task (s)", "s", "Seconds spent generating and scoring the task."),
        Metric("task_error", "task error", TEXT, "Why the task columns are empty."),
    )
    + _group(
        "sample",
        Metric("rss_bytes", "process RSS (MB)", "bytes", "This process's resident memory.", 1e-6),
        Metric(
            "cuda_allocated_bytes",
            "CUDA allocated (MB)",
            "bytes",
            "Bytes torch's CUDA allocator holds for live tensors (torch.cuda.memory_allocated).",
            1e-6,
        ),
        Metric(
            "cuda_reserved_bytes",
            "CUDA reserved (MB)",
            "bytes",
            "Bytes torch's CUDA allocator has reserved from the driver "
            "(torch.cuda.memory_reserved).",
            1e-6,
        ),
        Metric(
            "peak_rss_bytes",
            "peak process RSS (MB)",
            "bytes",
            "The highest resident memory of one process: "
            "a Monitor's highest sample, or the kernel's high-water mark (VmHWM) "
            "of a worker process.",
            1e-6,
        ),
        Metric(
            "tokens_per_s",
            "tokens/s",
            "tokens/s",
            "Tokens reported in the last sampling interval ÷ its length (any engine, any phase).",
        ),
    )
    + _group(
        "training",
        Metric(
            "step", "step", "", "Optimizer steps done (one step = batch × grad_accum examples)."
        ),
        Metric(
            "loss",
            "training loss",
            "nats/token",
            "Mean cross-entropy on the assistant's tokens of this step's batch.",
        ),
        Metric(
            "eval_loss",
            "eval loss",
            "nats/token",
            "Mean cross-entropy on the held-out split's assistant tokens.",
        ),
        Metric(
            "learning_rate",
            "learning rate",
            "",
            "AdamW's learning rate used by this step (after warm-up/schedule).",
        ),
        Metric(
            "grad_norm",
            "gradient norm",
            "",
            "L2 norm of the trainable parameters' gradient before clipping.",
        ),
        Metric(
            "elapsed_s",
            "elapsed (s)",
            "s",
            "Seconds since the run started (a resumed run continues the count).",
        ),
        Metric(
            "step_s",
            "seconds per step",
            "s",
            "Wall time of one optimizer step (forward, backward, update).",
        ),
        Metric(
            "trainable_params",
            "trainable parameters",
            "",
            "Parameters the optimizer updates (adapters, or all).",
        ),
        Metric(
            "total_params",
            "total parameters",
            "",
            "All parameters of the model being trained, adapters included.",
        ),
        Metric(
            "peak_train_bytes",
            "training peak (MB)",
            "bytes",
            "Peak process RSS during training minus the RSS "
            "before it, plus the weights (CUDA: max allocated): what the run itself needed.",
            1e-6,
        ),
        Metric(
            "estimated_train_bytes",
            "estimated training (MB)",
            "bytes",
            "The estimator's weights + gradients + "
            "optimizer + activations for this run (llamalab.estimate(mode=...)), "
            "without the runtime.",
            1e-6,
        ),
        Metric(
            "train_estimate_error_pct",
            "training estimate error (%)",
            "%",
            "(estimated − measured training peak) ÷ measured × 100.",
        ),
        Metric(
            "compliance_pct",
            "format compliance (%)",
            "%",
            "Share of held-out replies in the dataset's house format (llamalab.finetune.score).",
        ),
        Metric(
            "exact_pct",
            "exact answers (%)",
            "%",
            "Share of held-out replies whose answer matches exactly.",
        ),
    )
    + _group(
        "load test",
        Metric(
            "e2e_s",
            "E2E latency (s)",
            "s",
            "End-to-end latency: send until the last streamed chunk; in rate mode from the "
            "scheduled send time (a request queued behind busy workers counts its wait).",
        ),
        Metric(
            "tpot_s",
            "TPOT (ms)",
            "s",
            "Time per output token after the first: (E2E − TTFT) / (output tokens − 1).",
            1e3,
        ),
        Metric(
            "itl_s",
            "ITL (ms)",
            "s",
            "Inter-token latency: each gap between streamed chunks, pooled per level.",
            1e3,
        ),
        Metric(
            "output_tokens",
            "output tokens",
            "tokens",
            "Tokens the server reports it generated for the request.",
        ),
        Metric(
            "request_throughput",
            "requests/s",
            "requests/s",
            "Completed requests ÷ the level's duration (first scheduled send → last completion, "
            "warm-up left out).",
        ),
        Metric(
            "output_throughput",
            "output tokens/s",
            "tokens/s",
            "Output tokens of completed requests ÷ the level's duration: "
            "the server's aggregate speed.",
        ),
        Metric("error_rate", "error rate", "", "Failed requests ÷ requests sent."),
        Metric(
            "goodput",
            "goodput (requests/s)",
            "requests/s",
            "Completed requests meeting every SLO set (TTFT, TPOT, E2E) ÷ the level's duration.",
        ),
        Metric(
            "server_rss_peak_bytes",
            "server peak RSS (MB)",
            "bytes",
            "The model server process's highest resident memory, "
            "sampled every 0.25 s during the level.",
            1e-6,
        ),
        Metric(
            "server_output_throughput",
            "server output tokens/s",
            "tokens/s",
            "The server's own count of generated tokens (llama.cpp or vLLM /metrics), read after "
            "the warm-up and at the level's end, ÷ the time between the two reads.",
        ),
        Metric(
            "send_delay_s",
            "send delay (ms)",
            "s",
            "Rate mode: how long after its scheduled time a request was sent (workers busy).",
            1e3,
        ),
        Metric(
            "not_sent",
            "not sent",
            "requests",
            "Scheduled requests the level ended before sending: recorded, not errors.",
        ),
        Metric(
            "client_cpu_share",
            "client CPU (cores)",
            "",
            "CPU seconds the load-testing process used ÷ wall "
            "seconds: above ~0.8 the client, not the server, may be the bottleneck.",
        ),
    )
    + _group(
        "tokens",
        Metric("position", "position", "tokens", "The token's place in the answer (0: first)."),
        Metric("token", "token", TEXT, "The answer's token at this step."),
        Metric(
            "token_prob",
            "probability",
            "",
            "The model's probability of this token here, given the prompt and the answer so far.",
        ),
        Metric(
            "token_entropy",
            "entropy (nats)",
            "nats",
            "Entropy of the next-token distribution at this step: 0 = certain, higher = unsure "
            "(over the listed alternatives only for a served model: a lower bound).",
        ),
        Metric(
            "alternatives",
            "alternatives",
            TEXT,
            "The most likely tokens at this step with their probabilities, best first.",
        ),
        Metric(
            "other_prob",
            "probability (other)",
            "",
            "The second model's probability of the same token at the same step.",
        ),
        Metric("other_top1", "top-1 (other)", TEXT, "The second model's most likely token here."),
        Metric(
            "token_kl",
            "KL (nats)",
            "nats",
            "KL(model ‖ other) of the two next-token distributions at this step (both local).",
        ),
        Metric(
            "parts",
            "greedy choices part",
            "",
            "True where the two models' most likely tokens differ at this step.",
        ),
        Metric(
            "inspect_s_per_token",
            "inspect (ms/token)",
            "s",
            "Seconds the token inspector took per answer token (answer and scoring).",
            1e3,
        ),
    )
    + _group(
        "adapters",
        Metric(
            "adapter_switch_s",
            "adapter switch (ms)",
            "s",
            "Round trip of POST /lora-adapters on llama.cpp's server: the time to make another "
            "LoRA adapter (or none) what every request uses.",
            1e3,
        ),
        Metric(
            "adapter_decode_ratio",
            "decode with ÷ without adapter",
            "",
            "Served decode tokens/s with a LoRA adapter applied ÷ with none, same server and "
            "prompt, measured alternately (llama.cpp computes the adapter beside each weight).",
        ),
        Metric(
            "adapter_top1_agreement",
            "served adapter top-1 agreement",
            "",
            "Share of answer positions where the served adapter and the in-process base + peft "
            "adapter pick the same next token (teacher-forced on the in-process greedy answer).",
        ),
    )
    + _group(
        "hub",
        Metric("learner", "learner", TEXT, "A simulated learner's name on the room's hub."),
        Metric(
            "spawn_s",
            "server start (s)",
            "s",
            "From asking the hub for the learner's server until the hub says it is ready.",
        ),
        Metric(
            "notebook_s",
            "notebook (s)",
            "s",
            "Executing the notebook's code cells in the learner's kernel, one by one, as "
            "JupyterLab sends them (kernel start not included).",
        ),
        Metric(
            "cgroup_peak_bytes",
            "learner peak (MB)",
            "bytes",
            "High-water mark of the learner's cgroup (memory.max_usage_in_bytes): Jupyter "
            "server, kernel, and the file pages they were first to read — what its limit checks.",
            1e-6,
        ),
        Metric(
            "oom_kills",
            "OOM kills",
            "",
            "Processes the kernel's OOM killer ended in the learner's cgroup (its limit reached).",
        ),
        Metric("completed", "completed", "", "1 if every code cell ran without an error, else 0."),
    )
    + _group(
        "arena",
        Metric(
            "contender",
            "contender",
            TEXT,
            "A blind arena's contender: model/scheme (or a served model's name).",
        ),
        Metric(
            "rank",
            "rank",
            "",
            "1 + how many contenders are surely better (their interval's low end above this "
            "one's high end), as Chatbot Arena ranks.",
        ),
        Metric(
            "bt_score",
            "Bradley–Terry score",
            "",
            "Maximum-likelihood Bradley–Terry score from the room's blind votes, on the Elo scale "
            "(400·log10 odds, averaging 1000): 100 points apart = the higher wins 64 % of votes.",
        ),
        Metric("bt_low", "score low (95 %)", "", "Bootstrap 2.5th percentile of the score."),
        Metric("bt_high", "score high (95 %)", "", "Bootstrap 97.5th percentile of the score."),
        Metric("votes", "votes", "", "Blind votes this contender was in."),
        Metric("wins", "wins", "", "Votes its answer won (ties not counted)."),
        Metric("ties", "ties", "", "Votes that judged its answer as good as the other."),
        Metric(
            "elo",
            "online Elo",
            "",
            "Elo updated vote by vote (K = 4, from 1000): depends on the votes' order.",
        ),
    )
    + _group(
        "room",
        Metric("name", "name", TEXT, "The name a learner chose for their results in the room."),
        Metric(
            "roofline_share",
            "share of the roofline",
            "",
            "Measured decode tokens/s ÷ the roofline's bound for the same model, scheme and memory "
            "bandwidth (bandwidth ÷ bytes read per token).",
        ),
        Metric("time", "posted at", "s", "When the room's board stored the record (Unix time)."),
    )
    + _group(
        "",
        Metric(
            "model",
            "model",
            TEXT,
            "The model's catalog name, or the id its server serves it under.",
        ),
        Metric("scheme", "scheme", TEXT, "How the weights are stored (catalog/schemes.toml)."),
        Metric("run", "run", "", "Which repeat of the prompts (0-based)."),
        Metric(
            "bandwidth_bytes_s",
            "memory bandwidth (GB/s)",
            "bytes/s",
            "How fast memory is read: a GPU's datasheet figure, or this machine's RAM measured by "
            "`memory_bandwidth()`. Decode tokens/s is at most this ÷ bytes read per token.",
            1e-9,
        ),
        Metric("prompt", "prompt", TEXT, "The prompt (a string, or the last chat message)."),
        Metric(
            "error", "error", TEXT, "Why a row holds no measurement: the message and what to do."
        ),
    )
)

METRICS: dict[str, Metric] = {m.key: m for m in _METRICS}


def metric(key: str) -> Metric:
    """The metric called `key`; KeyError names the known keys."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"{key!r} is not a metric; known: {', '.join(METRICS)}") from None


def label(key: str) -> str:
    """The label a plot or table header shows for `key` (the key itself if it is not a metric)."""
    return METRICS[key].label if key in METRICS else key


def columns(group: str) -> tuple[str, ...]:
    """The keys of one record kind, in the vocabulary's order ("generation",
    "load", "quality", ...)."""
    return tuple(m.key for m in _METRICS if m.group == group)
