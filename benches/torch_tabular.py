# Copied unchanged (below this comment) from ../shared/peers/torch_tabular.py, the peer the thresholds were
# measured with (2026-11-30); benches/tabular_peers.sh runs it next to keras_tabular.py and examples/tabular.rs.
"""PyTorch CPU peer for tabular tasks: the same dense network and training recipe that the hidden tabular bars ask of
wgtrain's `wgtrain fit`, to set their thresholds from a real measurement.

  python torch_tabular.py --train T.csv --test S.csv --target COL --task regress|classify|binary
      [--categorical a,b] [--log-target] [--hidden 64,64] [--epochs 200] [--batch 32] [--patience 10]

Standardizes features on the training split (after one-hot encoding categoricals), holds out 10% of the training
rows (seeded) for validation, Adam 1e-3, early stopping on val_loss with the best weights restored. Prints one JSON
line with the test metrics and seconds per epoch.
"""
import argparse, json, time
import numpy as np, pandas as pd, torch

ap = argparse.ArgumentParser()
ap.add_argument('--train'); ap.add_argument('--test'); ap.add_argument('--target'); ap.add_argument('--task')
ap.add_argument('--categorical', default=''); ap.add_argument('--hidden', default='64,64')
ap.add_argument('--epochs', type=int, default=200); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--patience', type=int, default=10); ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()
torch.manual_seed(a.seed); torch.set_num_threads(2)
tr, te = pd.read_csv(a.train), pd.read_csv(a.test)
cats = [c for c in a.categorical.split(',') if c]
ytr, yte = tr.pop(a.target), te.pop(a.target)
X = pd.get_dummies(pd.concat([tr, te]), columns=cats, dtype=float)
Xtr, Xte = X.iloc[:len(tr)].to_numpy(np.float32), X.iloc[len(tr):].to_numpy(np.float32)
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-7
Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
if a.task == 'regress':
    Ytr, Yte = ytr.to_numpy(np.float32)[:, None], yte.to_numpy(np.float32)[:, None]; out = 1
    loss_fn = torch.nn.MSELoss()
else:
    classes = sorted(set(ytr) | set(yte)); m = {c: i for i, c in enumerate(classes)}
    Ytr, Yte = np.array([m[v] for v in ytr]), np.array([m[v] for v in yte]); out = len(classes)
    loss_fn = torch.nn.CrossEntropyLoss()
rng = np.random.default_rng(a.seed); p = rng.permutation(len(Xtr)); nv = len(Xtr) // 10
Xv, Yv, Xt, Yt = Xtr[p[:nv]], Ytr[p[:nv]], Xtr[p[nv:]], Ytr[p[nv:]]
layers, w = [], Xtr.shape[1]
for h in map(int, a.hidden.split(',')):
    layers += [torch.nn.Linear(w, h), torch.nn.ReLU()]; w = h
net = torch.nn.Sequential(*layers, torch.nn.Linear(w, out))
opt = torch.optim.Adam(net.parameters(), 1e-3, eps=1e-7)
T = lambda x: torch.tensor(x)
Xt_, Yt_, Xv_, Yv_ = T(Xt), T(Yt), T(Xv), T(Yv)
best, bad, state, secs = float('inf'), 0, None, []
for ep in range(a.epochs):
    t0 = time.perf_counter(); net.train(); perm = torch.randperm(len(Xt_))
    for i in range(0, len(perm), a.batch):
        j = perm[i:i + a.batch]; opt.zero_grad(); l = loss_fn(net(Xt_[j]), Yt_[j]); l.backward(); opt.step()
    net.eval()
    with torch.no_grad(): vl = float(loss_fn(net(Xv_), Yv_))
    secs.append(time.perf_counter() - t0)
    if vl < best: best, bad, state = vl, 0, {k: v.clone() for k, v in net.state_dict().items()}
    else:
        bad += 1
        if bad >= a.patience: break
net.load_state_dict(state)
with torch.no_grad(): pr = net(T(Xte)).numpy()
res = {'epochs_run': ep + 1, 'seconds_per_epoch': float(np.median(secs[1:] or secs)), 'rows': len(Xt)}
if a.task == 'regress':
    e = pr[:, 0] - Yte[:, 0]
    res.update(mae=float(np.abs(e).mean()), rmse=float(np.sqrt((e ** 2).mean())), r2=float(1 - (e ** 2).sum() / ((Yte[:, 0] - Yte[:, 0].mean()) ** 2).sum()))
else:
    res.update(accuracy=float((pr.argmax(1) == Yte).mean()))
print(json.dumps(res))
