#!/usr/bin/env bash
# Copies modules of Debian's stock kernel (scripts/stock-kernel.sh), with everything they depend on,
# decompressed, into a directory, and writes DEST/order: one module name per line, each after its
# dependencies (the order to insmod them in; busybox's insmod reads no modules.dep).
#   stock-modules.sh DEST MODULE...
# The modules stay as Debian built and signed them (the signature is inside the uncompressed file).
. "$(dirname "$0")/lib.sh"

dest=$1
shift
release=$(cat "$STOCK/release" 2>/dev/null) || die "no stock kernel: run scripts/stock-kernel.sh"
tree=$STOCK/root/usr/lib/modules/$release/kernel
[ -d "$tree" ] || die "$tree missing: run scripts/stock-kernel.sh"
mkdir -p "$dest"

declare -A file=() seen=()
while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}
    file[${n//-/_}]=$f
done < <(find "$tree" -name '*.ko*')

order=()
add() {  # module name ('-' or '_')
    local key=${1//-/_} f deps d
    [ -n "${seen[$key]:-}" ] && return 0
    f=${file[$key]:-}
    [ -n "$f" ] || die "stock-modules: no module $1 in $release"
    seen[$key]=1
    deps=$(/sbin/modinfo -F depends "$f")
    for d in ${deps//,/ }; do add "$d"; done
    case $f in
    *.xz) xz -dc "$f" ;;
    *.zst) zstd -dc "$f" ;;
    *.gz) gzip -dc "$f" ;;
    *) cat "$f" ;;
    esac > "$dest/$(basename "${f%%.ko*}").ko"
    order+=("$(basename "${f%%.ko*}")")
}
for m in "$@"; do add "$m"; done
printf '%s\n' "${order[@]}" > "$dest/order"
