# SPDX-License-Identifier: GPL-2.0
#
#   make              build xen_swiotlb_rs.ko and odp_umem.ko against $(KDIR)
#   make setup        install the toolchain and build the cached test kernel
#   make run [XEN=1]  boot a VM (or a Xen dom0) with the modules loaded and show what they report
#   make check        every test lane: host, qemu, dom0, domU
#   make bench        benchmark against the kernel's swiotlb (Documentation/bench.rst): bench/results.md
#   make clean
# KDIR defaults to the cached test kernel; point it at another configured 6.12 tree to build for it.
# CLIPPY=1 and W=1 work as for any kernel build.

XENDMA_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/xendma
KDIR ?= $(XENDMA_CACHE)/linux
BINDGEN ?= $(XENDMA_CACHE)/tools/bin/bindgen
# The test kernel is built by Debian's rustc-web; a module must use the same compiler.
KRUST := RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
	RUSTFMT=/usr/bin/rustfmt CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$(BINDGEN)
export XENDMA_CACHE

.PHONY: all modules setup kernel run check bench clean
all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) modules

setup:
	scripts/setup.sh
	scripts/kernel.sh

run:
	scripts/run.sh $(if $(XEN),xen,plain)

check:
	scripts/check.sh

bench:
	scripts/bench.sh

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) clean
	rm -rf build
