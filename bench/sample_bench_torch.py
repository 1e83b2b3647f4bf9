#!/usr/bin/python3
"""The PyTorch side of bench/sample_bench.sh: batched sampling with a KV cache from the very
network bench/sample_bench.c exported (same weights, same prompt).

The prompt runs once on one sequence; its per-layer keys and values are copied to N sequences,
and the N sequences then advance together one token per step, each step appending to the
cache and attending over it, sampling from the full softmax at temperature 1 (what gpt_sample
does). Before timing, the prompt's next-token probabilities are compared with clinfm's (printed
as max_abs_diff), so both sides are known to compute the same model. Prints one line:
  torch tokens_per_s=N best_s=S max_abs_diff=D threads=T torch=VERSION
Run it with Debian's interpreter (/usr/bin/python3), which python3-torch installs into."""
import argparse
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(path):
    with open(path, "rb") as f:
        head = f.readline().decode().split()
        if head[0] != "clinfm-weights-v1":
            raise SystemExit(f"{path}: not written by sample_bench --export")
        cfg = {k: int(v) for k, v in (kv.split("=") for kv in head[1:])}
        L, C, T, Vp = cfg["L"], cfg["C"], cfg["T"], cfg["Vp"]
        shapes = [("wte", (Vp, C)), ("wpe", (T, C)), ("ln1w", (L, C)), ("ln1b", (L, C)),
                  ("qkvw", (L, 3 * C, C)), ("qkvb", (L, 3 * C)), ("attprojw", (L, C, C)),
                  ("attprojb", (L, C)), ("ln2w", (L, C)), ("ln2b", (L, C)), ("fcw", (L, 4 * C, C)),
                  ("fcb", (L, 4 * C)), ("fcprojw", (L, C, 4 * C)), ("fcprojb", (L, C)),
                  ("lnfw", (C,)), ("lnfb", (C,))]
        w = {}
        for name, shape in shapes:
            n = int(np.prod(shape))
            w[name] = torch.from_numpy(np.frombuffer(f.read(4 * n), dtype=np.float32).copy()).view(shape)
        prompt = torch.from_numpy(np.frombuffer(f.read(4 * cfg["P"]), dtype=np.int32).astype(np.int64))
        probs = torch.from_numpy(np.frombuffer(f.read(4 * cfg["V"]), dtype=np.float32).copy())
    return cfg, w, prompt, probs


class Sampler:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.L, self.C, self.NH, self.V = cfg["L"], cfg["C"], cfg["NH"], cfg["V"]
        self.hs = self.C // self.NH
        self.wte_v = w["wte"][: self.V]

    def step(self, x_tok, pos0, kc, vc):
        """Feeds tokens (N, n) at positions pos0.. with caches kc/vc (L, N, NH, maxT, hs);
        returns the final hidden states (N, n, C)."""
        w, C, NH, hs = self.w, self.C, self.NH, self.hs
        N, n = x_tok.shape
        x = w["wte"][x_tok] + w["wpe"][pos0:pos0 + n]
        for l in range(self.L):
            h = F.layer_norm(x, (C,), w["ln1w"][l], w["ln1b"][l], 1e-5)
            q, k, v = F.linear(h, w["qkvw"][l], w["qkvb"][l]).split(C, dim=2)
            q = q.view(N, n, NH, hs).transpose(1, 2)
            kc[l, :N, :, pos0:pos0 + n] = k.view(N, n, NH, hs).transpose(1, 2)
            vc[l, :N, :, pos0:pos0 + n] = v.view(N, n, NH, hs).transpose(1, 2)
            K, Vv = kc[l, :N, :, :pos0 + n], vc[l, :N, :, :pos0 + n]
            att = (q @ K.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if n > 1:  # causal within the new tokens
                mask = torch.ones(n, pos0 + n, dtype=torch.bool).tril(diagonal=pos0)
                att = att.masked_fill(~mask, float("-inf"))
            y = (F.softmax(att, dim=-1) @ Vv).transpose(1, 2).reshape(N, n, C)
            x = x + F.linear(y, w["attprojw"][l], w["attprojb"][l])
            h = F.layer_norm(x, (C,), w["ln2w"][l], w["ln2b"][l], 1e-5)
            x = x + F.linear(F.gelu(F.linear(h, w["fcw"][l], w["fcb"][l]), approximate="tanh"),
                             w["fcprojw"][l], w["fcprojb"][l])
        return F.layer_norm(x, (C,), w["lnfw"], w["lnfb"], 1e-5)

    def sample(self, prompt, N, K, gen):
        L, NH, hs, T = self.L, self.NH, self.hs, self.cfg["T"]
        kc = torch.zeros(L, N, NH, T, hs)
        vc = torch.zeros(L, N, NH, T, hs)
        P = prompt.numel()
        h = self.step(prompt.view(1, P), 0, kc, vc)
        kc[:, 1:, :, :P] = kc[:, :1, :, :P]
        vc[:, 1:, :, :P] = vc[:, :1, :, :P]
        logits = h[:, -1] @ self.wte_v.t()
        probs = F.softmax(logits, dim=-1).expand(N, -1)
        out = torch.empty(N, K, dtype=torch.long)
        tok = torch.multinomial(probs, 1, generator=gen)
        out[:, 0] = tok[:, 0]
        for i in range(1, K):
            h = self.step(tok, P + i - 1, kc, vc)
            tok = torch.multinomial(F.softmax(h[:, -1] @ self.wte_v.t(), dim=-1), 1, generator=gen)
            out[:, i] = tok[:, 0]
        return out, kc, vc

    def next_probs(self, prompt):
        L, NH, hs, T = self.L, self.NH, self.hs, self.cfg["T"]
        kc = torch.zeros(L, 1, NH, T, hs)
        vc = torch.zeros(L, 1, NH, T, hs)
        h = self.step(prompt.view(1, -1), 0, kc, vc)
        return F.softmax(h[0, -1] @ self.wte_v.t(), dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--rollouts", type=int, default=20)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w, prompt, clinfm_probs = load(a.weights)
    s = Sampler(cfg, w)
    gen = torch.Generator().manual_seed(a.seed)
    with torch.inference_mode():
        diff = (s.next_probs(prompt) - clinfm_probs).abs().max().item()
        best = float("inf")
        for r in range(a.reps + 1):
            t0 = time.perf_counter()
            s.sample(prompt, a.rollouts, a.new, gen)
            dt = time.perf_counter() - t0
            if r > 0:
                best = min(best, dt)
    print("torch tokens_per_s=%.1f best_s=%.4f max_abs_diff=%.2e threads=%d torch=%s"
          % (a.rollouts * a.new / best, best, diff, torch.get_num_threads(), torch.__version__))
    return 0 if diff < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
