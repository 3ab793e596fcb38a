#!/usr/bin/env bash
# Replays every reproduction of issue 15 (hostile arguments, configs and files against the pith
# CLI) and exits 0 only when each gets a clean error naming the problem, or a correct result.
# Needs the default artifacts (`pith artifacts`); run by scripts/test.sh.
#   scripts/reproduce-issue-15.sh [PITH_BINARY]
set -uo pipefail
cd "$(dirname "$0")/.."
pith=${1:-./target/release/pith}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
bank=models/minilm-l6.pithkb

fail() { echo "FAIL  $1: $2"; failures=$((failures + 1)); }

# expect_error NAME PATTERN CMD...: non-zero exit, output matching PATTERN, no panic.
expect_error() {
  local name=$1 pattern=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = 0 ]; then fail "$name" "exit 0 (expected an error)"; return; fi
  if grep -q "panicked" <<<"$out"; then fail "$name" "panicked: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "$name" "no /$pattern/ in: $out"; return; fi
  echo "ok    $name: $(grep -E -- "$pattern" <<<"$out" | head -1 | cut -c1-150)"
}

# expect_ok NAME PATTERN CMD...: exit 0, output matching PATTERN, no panic.
expect_ok() {
  local name=$1 pattern=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != 0 ]; then fail "$name" "exit $rc: $out"; return; fi
  if grep -q "panicked" <<<"$out"; then fail "$name" "panicked: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "$name" "no /$pattern/ in: $out"; return; fi
  echo "ok    $name"
}

# A copy of the Tier M checkpoint (small: quantizing it takes seconds) with one file changed.
# checkpoint NAME FILE CONTENT  (CONTENT "-" removes FILE)
checkpoint() {
  local d=$work/$1
  mkdir -p "$d/1_Pooling"
  for f in model.safetensors vocab.txt; do ln -sf "$PWD/models/tier-m/$f" "$d/$f"; done
  cp models/tier-m/config.json models/tier-m/tokenizer_config.json "$d/"
  cp models/tier-m/1_Pooling/config.json "$d/1_Pooling/"
  if [ "$3" = "-" ]; then rm -f "$d/$2"; else printf '%s' "$3" >"$d/$2"; fi
  echo "$d"
}
config_with() { # a config.json with KEY set to VALUE (JSON)
  python3 -c 'import json,sys; c=json.load(open("models/tier-m/config.json")); c[sys.argv[1]]=json.loads(sys.argv[2]); print(json.dumps(c))' "$1" "$2"
}
quant() { "$pith" quantize "$@" --calib-count 4 --eval-count 4; }

echo "== arguments"
expect_ok "ask -k 2^64-1 answers" '^\[0\.' "$pith" ask "How do I delete my Facebook account?" --kb $bank -k 18446744073709551615
expect_error "ask -k 0" "at least 1" "$pith" ask "hi" --kb $bank -k 0
expect_error "quantize --alpha NaN" "not a finite number" quant models/tier-m -o "$work/x.pith" --alpha NaN
expect_error "quantize --alpha 2" "outside 0..=1" quant models/tier-m -o "$work/x.pith" --alpha 2
expect_error "quantize --calib-count 0" "calib-count.*at least 1" "$pith" quantize models/tier-m -o "$work/x.pith" --calib-count 0
expect_error "quantize --ffn16 past the last layer" "names layer 9 but .* has 4 layers" quant models/tier-m -o "$work/x.pith" --ffn16 0,9
expect_error "quantize --ffn16 x" "not a layer index" quant models/tier-m -o "$work/x.pith" --ffn16 0,x
expect_error "quantize --ffn16 on a static model" "applies to BERT encoders" quant models/tier-s -o "$work/x.pith" --ffn16 all
expect_error "quantize --eval-count 0" "eval-count.*at least 1" "$pith" quantize models/tier-m -o "$work/x.pith" --eval-count 0
expect_error "kb build --threshold NaN" "threshold.*not a finite number" "$pith" kb build data/faq/stackfaq-bank.jsonl -o "$work/b.pithkb" --threshold NaN
expect_error "kb build --threshold 1.5" "threshold.*outside -1..=1" "$pith" kb build data/faq/stackfaq-bank.jsonl -o "$work/b.pithkb" --threshold 1.5
expect_error "kb build --keep inf" "keep.*not a finite number" "$pith" kb build data/faq/stackfaq-bank.jsonl -o "$work/b.pithkb" --keep inf
expect_error "kb build --bits 5" "bits.*not 4 or 8" "$pith" kb build data/faq/stackfaq-bank.jsonl -o "$work/b.pithkb" --bits 5
expect_error "embed --threads 0" "threads.*at least 1" "$pith" embed --file data/faq/stackfaq-dev-queries.tsv --out "$work/e.f32" --threads 0

echo "== broken pipe"
out=$("$pith" kb info $bank --entries 2>&1 | head -1; echo "rc=${PIPESTATUS[0]}")
if grep -q panicked <<<"$out" || ! grep -q "rc=0" <<<"$out"; then fail "kb info | head -1" "$out"; else echo "ok    kb info --entries | head -1 exits quietly"; fi

echo "== checkpoint configs"
expect_error "num_attention_heads 0" "config.json: .num_attention_heads. is 0" quant "$(checkpoint heads config.json "$(config_with num_attention_heads 0)")" -o "$work/x.pith"
expect_error "num_hidden_layers 0" "config.json: .num_hidden_layers. is 0" quant "$(checkpoint layers config.json "$(config_with num_hidden_layers 0)")" -o "$work/x.pith"
expect_error "layer_norm_eps -1" "layer_norm_eps -1 must be a positive" quant "$(checkpoint eps config.json "$(config_with layer_norm_eps -1)")" -o "$work/x.pith"
expect_error "position_embedding_type relative_key" "position_embedding_type .relative_key. is not supported" quant "$(checkpoint pos config.json "$(config_with position_embedding_type '"relative_key"')")" -o "$work/x.pith"
expect_error "malformed tokenizer_config.json" "tokenizer_config.json" quant "$(checkpoint tc tokenizer_config.json '{"do_lower_case": "yes"}')" -o "$work/x.pith"
expect_error "malformed 1_Pooling" "1_Pooling/config.json" quant "$(checkpoint pool 1_Pooling/config.json '{"pooling_mode_mean_tokens": 1}')" -o "$work/x.pith"
expect_error "malformed sentence_bert_config.json" "sentence_bert_config.json" quant "$(checkpoint sb sentence_bert_config.json '{"max_seq_length": "long"}')" -o "$work/x.pith"
expect_error "malformed modules.json" "modules.json" quant "$(checkpoint mod modules.json '{"not": "a list"}')" -o "$work/x.pith"
# tokenizer.json alone saying lowercase false: the package must keep case ("HELLO" != "hello").
d=$(checkpoint cased tokenizer_config.json -)
printf '%s' '{"normalizer": {"type": "BertNormalizer", "lowercase": false, "strip_accents": false, "handle_chinese_chars": true}}' >"$d/tokenizer.json"
if quant "$d" -o "$work/cased.pith" >/dev/null 2>&1 \
  && [ "$("$pith" embed HELLO --model "$work/cased.pith" --json)" != "$("$pith" embed hello --model "$work/cased.pith" --json)" ]; then
  echo "ok    tokenizer.json lowercase false keeps case"
else fail "tokenizer.json lowercase false" "the package lowercases (or did not build)"; fi

echo "== files"
printf 'not a package' >"$work/good.pith"
expect_error "quantize with a bad config keeps the old output" "is 0" quant "$(checkpoint keep config.json "$(config_with num_hidden_layers 0)")" -o "$work/good.pith"
[ "$(cat "$work/good.pith")" = "not a package" ] || fail "quantize keeps the old output" "it was overwritten"
cp data/faq/stackfaq-bank.jsonl "$work/src.jsonl"
expect_error "kb build src -o src" "also an input" "$pith" kb build "$work/src.jsonl" -o "$work/src.jsonl"
cmp -s data/faq/stackfaq-bank.jsonl "$work/src.jsonl" || fail "kb build src -o src" "the source changed"
expect_error "quantize -o the calibration file" "also an input" quant models/tier-m --calib "$work/src.jsonl" -o "$work/src.jsonl"
expect_error "embed --out the input" "also an input" "$pith" embed --file "$work/src.jsonl" --out "$work/src.jsonl"
mkdir -p "$work/outdir/taken.pithkb"
expect_error "kb build onto a folder" "taken.pithkb" "$pith" kb build data/faq/stackfaq-bank.jsonl -o "$work/outdir/taken.pithkb"
mkdir -p "$work/outdir/taken.f32"
expect_error "embed --out onto a folder" "taken.f32" "$pith" embed --file data/faq/stackfaq-dev-queries.tsv --out "$work/outdir/taken.f32"
left=$(find "$work/outdir" -mindepth 1 -not -name 'taken.*')
[ -z "$left" ] || fail "failed writes leave nothing behind" "$left"

echo "== bank sources"
printf '%s\n' '{"id": "a", "question": "q1", "answer": "a1"}' '{"id": "a", "question": "q2", "answer": "a2"}' >"$work/dup.jsonl"
expect_error "kb build duplicate ids" 'line 2: id "a" was already used on line 1' "$pith" kb build "$work/dup.jsonl" -o "$work/b.pithkb"
printf '%s\n' '{"id": "a", "question": "q1", "answer": {"text": "a1"}}' >"$work/obj.jsonl"
expect_error "kb build non-string answer" 'line 1: .answer. must be a string' "$pith" kb build "$work/obj.jsonl" -o "$work/b.pithkb"

echo "== eval sts inputs"
printf '1\ta\tb\nNaN\tc\td\n' >"$work/nan.tsv"
expect_error "eval sts NaN score" "nan.tsv:2: the score NaN" "$pith" eval sts "$work/nan.tsv"
printf '1\ta\tb\ninf\tc\td\n' >"$work/inf.tsv"
expect_error "eval sts inf score" "inf.tsv:2: the score inf" "$pith" eval sts "$work/inf.tsv"
: >"$work/empty.tsv"
expect_error "eval sts empty file" "0 scored pairs" "$pith" eval sts "$work/empty.tsv"
printf 'header line\nnot a pair\n' >"$work/junk.tsv"
expect_error "eval sts unparsable" "junk.tsv:2: expected" "$pith" eval sts "$work/junk.tsv"

echo "== packages and backends"
expect_error "tract-fp32 with the 12k package" "token table is 30522 x 384 but the package's is 12000 x 384" "$pith" embed hello --backend tract-fp32 --model models/minilm-l6-12k.pith
expect_error "tract-int8 with Tier M" "token table" "$pith" embed hello --backend tract-int8 --model models/tier-m.pith
truncate -s 2G "$work/big.bin"
rss=$( { /usr/bin/time -f 'maxrss_kb=%M' "$pith" embed hello --model "$work/big.bin" 2>&1 >/dev/null; } | tee "$work/big.log" | sed -n 's/^maxrss_kb=//p')
if grep -q "not a package" "$work/big.log" && [ "${rss:-999999999}" -lt 200000 ]; then
  echo "ok    2 GB --model refused at ${rss} KB RSS"
else fail "2 GB --model" "$(cat "$work/big.log")"; fi

if [ "$failures" = 0 ]; then echo "issue 15 reproductions: all clean"; else echo "issue 15 reproductions: $failures failed"; exit 1; fi
