#!/bin/bash
export XDG_RUNTIME_DIR=/tmp/xdg
out=$1; rounds=${2:-3}
: > $out
for r in $(seq $rounds); do
 for spec in "diabetes target regress 0" "breast_cancer diagnosis binary 0" "digits digit classify 2"; do
  set -- $spec
  for b in lavapipe gl; do
   for v in before after; do
     s=$(/tmp/tab-$v --train /tmp/tab/$1/train.csv --test /tmp/tab/$1/test.csv --target $2 --task $3 --backend $b --seed $4 2>/dev/null)
     echo "{\"round\":$r,\"data\":\"$1\",\"backend\":\"$b\",\"version\":\"$v\",\"r\":$s}" >> $out
   done
  done
 done
done
