#!/usr/bin/env bash
# Prints scripts/lib.sh's cache path and kernel toolchain for the top-level Makefile, which keeps no copy of
# them: one line of NAME=value words, XENDMA_CACHE= and KSRC= followed by the make arguments in KRUST.
. "$(dirname "$0")/lib.sh"
printf '%s\n' "XENDMA_CACHE=$XENDMA_CACHE KSRC=$KSRC ${KRUST[*]}"
