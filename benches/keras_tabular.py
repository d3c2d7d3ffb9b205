"""Keras CPU peer for tabular tasks: exactly the recipe of torch_tabular.py (next to this file) in Keras, so that
benches/tabular_peers.sh compares three frameworks on the same split files.

  python keras_tabular.py --train T.csv --test S.csv --target COL --task regress|classify|binary
      [--categorical a,b] [--hidden 64,64] [--epochs 200] [--batch 32] [--patience 10] [--seed S]

As torch_tabular.py: features one-hot encoded and standardized on the training file (population std + 1e-7), the
same seeded 10 % of the training rows (numpy default_rng(seed).permutation, first len // 10) held out for
validation, a Sequential ReLU MLP (Keras's default Glorot-uniform init; PyTorch's Linear uses its own uniform
init), Adam 1e-3 (epsilon 1e-7), batch 32 shuffled each epoch, EarlyStopping(val_loss, patience,
restore_best_weights=True). Prints one JSON line with the test metric and the median seconds per epoch after
the first (validation included), as torch_tabular.py does. `binary` trains one sigmoid output.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--train'); ap.add_argument('--test'); ap.add_argument('--target'); ap.add_argument('--task')
ap.add_argument('--categorical', default=''); ap.add_argument('--hidden', default='64,64')
ap.add_argument('--epochs', type=int, default=200); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--patience', type=int, default=10); ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()
tf.keras.utils.set_random_seed(a.seed)
# Two threads, as torch_tabular.py's torch.set_num_threads(2).
tf.config.threading.set_intra_op_parallelism_threads(2); tf.config.threading.set_inter_op_parallelism_threads(2)

tr, te = pd.read_csv(a.train), pd.read_csv(a.test)
cats = [c for c in a.categorical.split(',') if c]
ytr, yte = tr.pop(a.target), te.pop(a.target)
X = pd.get_dummies(pd.concat([tr, te]), columns=cats, dtype=float)
Xtr, Xte = X.iloc[:len(tr)].to_numpy(np.float32), X.iloc[len(tr):].to_numpy(np.float32)
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-7
Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
if a.task == 'regress':
    Ytr, Yte = ytr.to_numpy(np.float32)[:, None], yte.to_numpy(np.float32)[:, None]
    out, act, loss = 1, None, 'mse'
else:
    classes = sorted(set(ytr) | set(yte)); m = {c: i for i, c in enumerate(classes)}
    Ytr, Yte = np.array([m[v] for v in ytr]), np.array([m[v] for v in yte])
    if a.task == 'binary':
        out, act, loss = 1, 'sigmoid', 'binary_crossentropy'
        Ytr = Ytr.astype(np.float32)
    else:
        out, act, loss = len(classes), 'softmax', 'sparse_categorical_crossentropy'
rng = np.random.default_rng(a.seed); p = rng.permutation(len(Xtr)); nv = len(Xtr) // 10
Xv, Yv, Xt, Yt = Xtr[p[:nv]], Ytr[p[:nv]], Xtr[p[nv:]], Ytr[p[nv:]]

model = tf.keras.Sequential([tf.keras.Input(shape=(Xtr.shape[1],))]
                            + [tf.keras.layers.Dense(int(h), activation='relu') for h in a.hidden.split(',')]
                            + [tf.keras.layers.Dense(out, activation=act)])
model.compile(optimizer=tf.keras.optimizers.Adam(1e-3, epsilon=1e-7), loss=loss)


class EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of each epoch, its validation pass included."""
    def on_train_begin(self, logs=None): self.secs = []
    def on_epoch_begin(self, epoch, logs=None): self.t0 = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.secs.append(time.perf_counter() - self.t0)


timer = EpochTimer()
stop = tf.keras.callbacks.EarlyStopping(monitor='val_loss', patience=a.patience, restore_best_weights=True)
hist = model.fit(Xt, Yt, batch_size=a.batch, epochs=a.epochs, validation_data=(Xv, Yv), shuffle=True,
                 callbacks=[stop, timer], verbose=0)
pr = model.predict(Xte, batch_size=1024, verbose=0)
res = {'epochs_run': len(hist.history['loss']), 'seconds_per_epoch': float(np.median(timer.secs[1:] or timer.secs)),
       'rows': len(Xt)}
if a.task == 'regress':
    e = pr[:, 0] - Yte[:, 0]
    res.update(mae=float(np.abs(e).mean()), rmse=float(np.sqrt((e ** 2).mean())),
               r2=float(1 - (e ** 2).sum() / ((Yte[:, 0] - Yte[:, 0].mean()) ** 2).sum()))
elif a.task == 'binary':
    res.update(accuracy=float(((pr[:, 0] > 0.5) == Yte).mean()))
else:
    res.update(accuracy=float((pr.argmax(1) == Yte).mean()))
print(json.dumps(res))
