# SPDX-License-Identifier: GPL-2.0
#
#   make              build xen_swiotlb_rs.ko and odp_umem.ko against $(KDIR)
#   make setup        install the toolchain and build the cached test kernel
#   make run [XEN=1]  boot a VM (or a Xen dom0) with the modules loaded and show what they report
#   make check        every test lane: host, qemu, dom0, domU
#   make bench        benchmark against the kernel's swiotlb (Documentation/bench.rst): bench/results.md
#   make clean
# KDIR defaults to the cached test kernel; point it at another configured tree with its Rust metadata
# (6.12 or 7.x; for a distro kernel whose headers lack it, see scripts/prepare-kdir.sh) to build for
# it, with the compilers that tree names (rustc, bindgen from PATH unless RUSTC=/BINDGEN= say other).
# CLIPPY=1 and W=1 work as for any kernel build.

# The cache path and the toolchain (the compiler the test kernel was built with) are defined in scripts/lib.sh
# alone; scripts/make-vars.sh prints them. XENDMA_CACHE= (or XDG_CACHE_HOME), KDIR= and BINDGEN= override them
# (the scripts' KSRC does not: KDIR is make's).
xendma_vars := $(shell XENDMA_CACHE='$(XENDMA_CACHE)' XDG_CACHE_HOME='$(XDG_CACHE_HOME)' KSRC= \
	$(dir $(lastword $(MAKEFILE_LIST)))scripts/make-vars.sh)
xendma_var = $(patsubst $(1)=%,%,$(filter $(1)=%,$(xendma_vars)))
$(if $(call xendma_var,KSRC),,$(error scripts/make-vars.sh failed))
XENDMA_CACHE ?= $(call xendma_var,XENDMA_CACHE)
KDIR ?= $(call xendma_var,KSRC)
BINDGEN ?= $(call xendma_var,BINDGEN)
# The project's toolchain is the test kernel's; another tree brings its own.
ifeq ($(KDIR),$(call xendma_var,KSRC))
KRUST := $(filter-out XENDMA_CACHE=% KSRC=% BINDGEN=%,$(xendma_vars)) BINDGEN=$(BINDGEN)
else
KRUST :=
endif
export XENDMA_CACHE

.PHONY: all modules setup kernel run check bench clean
all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) modules

setup:
	scripts/setup.sh
	scripts/kernel.sh
	scripts/stock-kernel.sh

run:
	scripts/run.sh $(if $(XEN),xen,plain)

check:
	scripts/check.sh

bench:
	scripts/bench.sh

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) clean
	rm -rf build
