#!/usr/bin/python3
"""The PyTorch twin of bench/gpt_bench.c: the same GPT (pre-LayerNorm, causal self-attention,
tanh-GELU MLP, tied embeddings, learned positions, dropout on the embedding sum and on each
residual branch), the same AdamW with decoupled weight decay on matrices only, the same warm-up
plus cosine schedule and global-norm clipping, trained on the same kind of synthetic token
stream. It prints one line "torch tokens_per_s=N cpu_tokens_per_s=N peak_rss_mb=M loss=L" that
bench/gpt_bench.sh compares with the C trainer. Run it with Debian's interpreter (/usr/bin/python3), which is the
one python3-torch installs into.

PyTorch 1.13 has no fused attention on CPU, so attention here is the textbook one: a T x T score
matrix per head, masked and soft-maxed. That is what a PyTorch user on this Debian release gets."""
import argparse
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH, p):
        super().__init__()
        self.NH = NH
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.attproj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fcproj = nn.Linear(4 * C, C)
        self.drop = nn.Dropout(p)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        hs = C // self.NH
        q = q.view(B, T, self.NH, hs).transpose(1, 2)
        k = k.view(B, T, self.NH, hs).transpose(1, 2)
        v = v.view(B, T, self.NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(mask[:T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.drop(self.attproj(y))
        x = x + self.drop(self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))
        return x


class GPT(nn.Module):
    def __init__(self, V, T, C, L, NH, p):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.drop = nn.Dropout(p)
        self.blocks = nn.ModuleList([Block(C, NH, p) for _ in range(L)])
        self.lnf = nn.LayerNorm(C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)))
        for name, w in self.named_parameters():
            if w.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(w, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(w)

    def forward(self, idx, targets):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for blk in self.blocks:
            x = blk(x, self.mask)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied embeddings
        return F.cross_entropy(logits.view(B * T, -1), targets.view(-1))


def lr_at(step, lr, min_lr, warmup, total):
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * frac))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    B, T, V = a.batch, a.context, a.vocab
    model = GPT(V, T, a.d_model, a.layers, a.heads, a.dropout)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    # A synthetic stream with structure (a noisy repeating pattern) so the loss moves.
    g = torch.Generator().manual_seed(a.seed)
    stream = (torch.arange(B * T * 64) * 7 + torch.randint(0, 5, (B * T * 64,), generator=g)) % V
    model.train()
    total = a.warmup_steps + a.steps
    t0 = None
    loss = float("nan")
    for step in range(total):
        if step == a.warmup_steps:
            t0 = time.perf_counter()
            c0 = time.process_time()
        off = (step * B * T) % (stream.numel() - B * T - 1)
        x = stream[off:off + B * T].view(B, T)
        y = stream[off + 1:off + B * T + 1].view(B, T)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, 3e-4, 3e-5, 10, total)
        opt.zero_grad(set_to_none=True)
        l = model(x, y)
        l.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = l.item()
    dt = time.perf_counter() - t0
    cdt = time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    # cpu_tokens_per_s: tokens over the process's CPU seconds per thread, as gpt_bench.c prints.
    print("torch tokens_per_s=%.1f cpu_tokens_per_s=%.1f peak_rss_mb=%.1f loss=%.4f threads=%d torch=%s"
          % (a.steps * B * T / dt, a.steps * B * T / (cdt / a.threads), rss_mb, loss,
             torch.get_num_threads(), torch.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
