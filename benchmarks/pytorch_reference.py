#!/usr/bin/env python3
"""PyTorch reference of proglab's neural program model, for throughput comparisons.

The same architecture as analysis/src/neural/transformer.rs: a map encoder (per-cell features ->
two ReLU linear layers -> masked mean and max pooling -> P prefix vectors), token and learned
position embeddings, pre-norm blocks with causal self-attention and a ReLU MLP, a final layer norm
and a linear head, with the additive grammar mask on the logits. Training is AdamW on the mean
per-token negative log-likelihood; scoring sums the log-probabilities of each sequence.

The data are synthetic token sequences of the same shapes (vocabulary, lengths, map sizes) as the
real ones: throughput does not depend on the values. Run it on the same machine as
`cargo bench -p analysis --features neural --bench neural` (or `proglab train-neural
--score-candidates ...`), with the same batch size and dtype (float32):

    python3 benchmarks/pytorch_reference.py --device cuda --batch 256 --score-batch 4096
    python3 benchmarks/pytorch_reference.py --device cpu --threads 1 --batch 32 --score-batch 128

Each measurement runs eagerly and under torch.compile (skipped with --no-compile); attention
uses torch.nn.functional.scaled_dot_product_attention, so PyTorch's fused kernels are allowed.
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Vocabulary of analysis/src/neural/tokens.rs with 4 subroutine slots.
PAD, BOS, EOS, SEP = 0, 1, 2, 3
FIRST_ACTION = 4
VOCAB = FIRST_ACTION + 5 + 4
CELL_FEATURES = 8
MASKED = -1e9


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, mlp_ratio * width)
        self.out = nn.Linear(mlp_ratio * width, width)

    def forward(self, x):
        b, l, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(b, l, 3, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, l, d))
        return x + self.out(F.relu(self.fc(self.ln2(x))))


class ProgramTransformer(nn.Module):
    def __init__(self, width=64, layers=2, heads=4, mlp_ratio=4, prefix=2, max_len=65):
        super().__init__()
        self.prefix = prefix
        self.width = width
        self.cell_in = nn.Linear(CELL_FEATURES, width)
        self.cell_hidden = nn.Linear(width, width)
        self.pool_out = nn.Linear(2 * width, prefix * width)
        self.tokens = nn.Embedding(VOCAB, width)
        self.positions = nn.Embedding(prefix + max_len, width)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB)

    def encode_tasks(self, cells, cell_mask):
        hidden = F.relu(self.cell_hidden(F.relu(self.cell_in(cells))))
        mask = cell_mask.unsqueeze(2)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        maxed = (hidden + (mask - 1.0) * 1e4).max(1).values
        pooled = torch.cat([mean, maxed], 1)
        return self.pool_out(pooled).view(-1, self.prefix, self.width)

    def forward(self, inputs, targets, target_mask, grammar, cells, cell_mask, task_index):
        """Per-sequence log P, shape (B,)."""
        prefix = self.encode_tasks(cells, cell_mask)[task_index]
        t = inputs.shape[1]
        x = torch.cat([prefix, self.tokens(inputs)], 1)
        x = x + self.positions(torch.arange(self.prefix + t, device=inputs.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x[:, self.prefix:])) + grammar
        log_probs = F.log_softmax(logits, -1)
        picked = log_probs.gather(2, targets.unsqueeze(2)).squeeze(2) * target_mask
        return picked.sum(1)


def synthetic_batch(batch, length, cells, device, generator):
    """A batch of the real shapes: random content tokens, each sequence ending in EOS."""
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    inputs = torch.full((batch, length), PAD, dtype=torch.long)
    targets = torch.full((batch, length), PAD, dtype=torch.long)
    target_mask = torch.zeros(batch, length)
    for i, n in enumerate(lengths.tolist()):
        content = torch.randint(FIRST_ACTION, VOCAB, (n - 1,), generator=generator)
        inputs[i, 0] = BOS
        inputs[i, 1:n] = content
        targets[i, : n - 1] = content
        targets[i, n - 1] = EOS
        target_mask[i, :n] = 1.0
    grammar = torch.zeros(batch, length, VOCAB)
    grammar[:, :, PAD] = MASKED
    grammar[:, :, BOS] = MASKED
    n_tasks = 10
    cell_values = torch.randn(n_tasks, cells, CELL_FEATURES, generator=generator)
    cell_mask = torch.ones(n_tasks, cells)
    task_index = torch.randint(0, n_tasks, (batch,), generator=generator)
    tensors = (inputs, targets, target_mask, grammar, cell_values, cell_mask, task_index)
    return tuple(x.to(device) for x in tensors)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_training(model, batch, args, device):
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)

    def step():
        optimiser.zero_grad(set_to_none=True)
        log_p = model(*batch)
        loss = -log_p.sum() / batch[2].sum()
        loss.backward()
        optimiser.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    seconds = time.perf_counter() - began
    return args.steps * batch[0].shape[0] / seconds, 1000 * seconds / args.steps


@torch.no_grad()
def measure_scoring(model, batch, args, device):
    for _ in range(args.warmup):
        model(*batch)
    sync(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        model(*batch)
    sync(device)
    seconds = time.perf_counter() - began
    return args.steps * batch[0].shape[0] / seconds, 1000 * seconds / args.steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32, help="training batch")
    parser.add_argument("--score-batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=30, help="padded input positions")
    parser.add_argument("--cells", type=int, default=49)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--total-candidates", type=float, default=14.8e6,
                        help="report the time to score this many candidates")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    train_batch = synthetic_batch(args.batch, args.length, args.cells, device, generator)
    score_batch = synthetic_batch(args.score_batch, args.length, args.cells, device, generator)
    print(f"torch {torch.__version__}, device {device}, float32, width {args.width}, layers {args.layers}, "
          f"heads {args.heads}, length {args.length}")
    variants = [("eager", False)] + ([] if args.no_compile else [("compile", True)])
    for name, compiled in variants:
        model = ProgramTransformer(args.width, args.layers, args.heads).to(device)
        run = torch.compile(model) if compiled else model
        rate, ms = measure_training(run, train_batch, args, device)
        print(f"{name}: train batch {args.batch}: {rate:.0f} programs/s ({ms:.2f} ms/step)")
        model.eval()
        rate, ms = measure_scoring(run, score_batch, args, device)
        print(f"{name}: score batch {args.score_batch}: {rate:.0f} candidates/s ({ms:.2f} ms/batch); "
              f"{args.total_candidates:.3g} candidates in {args.total_candidates / rate:.1f} s")


if __name__ == "__main__":
    main()
