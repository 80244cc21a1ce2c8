#!/usr/bin/env bash
# The Table-1 study's tables, figures and page, all from its committed records by bench.report
# (reports/table1.md embeds the Markdown ones; table1.tex is the LaTeX of the same tables).
#   bash reports/table1/summarize.sh
set -euo pipefail
cd "${ROOT:-$(dirname "$0")/../..}"
PY=${PY:-.venv/bin/python}
DIR=reports/table1
OUT=$DIR/tables
mkdir -p "$OUT"
$PY -m bench.report $DIR --paper --format markdown --out $OUT/nll.md
$PY -m bench.report $DIR --metric nll_best_component --paper --format markdown --out $OUT/nll_best_component.md
$PY -m bench.report $DIR --metric claims --format markdown --out $OUT/claims.md
$PY -m bench.report $DIR --metric claims --format csv --out $OUT/claims.csv
$PY -m bench.report $DIR --metric forgetting --format markdown --out $OUT/forgetting.md
$PY -m bench.report $DIR --metric quality --format markdown --out $OUT/quality.md
for m in fid kid precision recall density coverage; do
  $PY -m bench.report $DIR --metric $m --format markdown --out $OUT/$m.md
done
$PY -m bench.report $DIR --format csv --out $OUT/summary.csv
$PY $DIR/cost.py > $OUT/cost.md
$PY $DIR/estimator.py --table > $OUT/estimator.md
if [ -d $DIR/full/records ]; then
  $PY -m bench.report $DIR/full --paper --format markdown --out $OUT/full.md
  $PY -m bench.report $DIR/full --metric claims --format markdown --out $OUT/full-claims.md
fi
{ $PY -m bench.report $DIR --paper --format latex
  $PY -m bench.report $DIR --metric claims --format latex
  $PY -m bench.report $DIR --metric quality --format latex; } > reports/table1.tex
$PY -m bench.report $DIR --figures --format markdown > /dev/null
$PY -m bench.report $DIR --html
$PY $DIR/include.py reports/table1.md
