# SPDX-License-Identifier: GPL-2.0
#
#   make              build xen_swiotlb_rs.ko and odp_umem.ko against $(KDIR)
#   make install      install both modules for $(KDIR)'s kernel into /lib/modules/<release>/updates
#                     (signed where the tree has its signing key), run depmod, and install odp_umem's
#                     C API (include/odp_umem.h, Module.symvers) under $(PREFIX)
#   make uninstall    remove what make install installed
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

.PHONY: all modules install uninstall setup kernel run check bench clean
all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) modules

# Install paths (Documentation/install.rst): INSTALL_MOD_PATH and INSTALL_MOD_DIR as for any kernel
# module, DESTDIR and PREFIX for the C API that RDMA driver builds use (-I$(PREFIX)/include/xendma,
# KBUILD_EXTRA_SYMBOLS=$(PREFIX)/share/xendma/<release>/Module.symvers).
INSTALL_MOD_DIR ?= updates
PREFIX ?= /usr/local
krelease = $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
moddest = $(INSTALL_MOD_PATH)/lib/modules/$(krelease)/$(INSTALL_MOD_DIR)
apidest = $(DESTDIR)$(PREFIX)
# depmod for the running system's tree (a missing System.map, as in a headers package, makes kbuild
# skip its own); a staging INSTALL_MOD_PATH is left to the packager.
depmod = $(if $(INSTALL_MOD_PATH),@:,depmod -a $(krelease))
# modules_install signs with the tree's key (CONFIG_MODULE_SIG_KEY) when the tree has it, as a kernel
# built on this machine does; a distribution's tree has not (its key is the distribution's): then the
# modules are installed unsigned, and DKMS (dkms.conf) is the way to sign them with a MOK key.
sigkey = $(shell sed -n 's/^CONFIG_MODULE_SIG_KEY="\(.*\)"$$/\1/p' $(KDIR)/.config 2>/dev/null)
signing = $(if $(sigkey),$(if $(wildcard $(KDIR)/$(sigkey) $(sigkey)),,CONFIG_MODULE_SIG_ALL=))

install: modules
	@test -n "$(krelease)" || { echo "$(KDIR) has no include/config/kernel.release"; exit 1; }
	$(if $(signing),@echo "make install: $(KDIR) has no signing key $(sigkey): the modules are not signed")
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KRUST) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) $(signing) modules_install
	$(depmod)
	install -D -m 644 include/odp_umem.h $(apidest)/include/xendma/odp_umem.h
	install -D -m 644 Module.symvers $(apidest)/share/xendma/$(krelease)/Module.symvers

uninstall:
	@test -n "$(krelease)" || { echo "$(KDIR) has no include/config/kernel.release"; exit 1; }
	rm -f $(moddest)/xen_swiotlb_rs.ko* $(moddest)/odp_umem.ko*
	$(depmod)
	rm -f $(apidest)/include/xendma/odp_umem.h $(apidest)/share/xendma/$(krelease)/Module.symvers
	-rmdir $(apidest)/include/xendma $(apidest)/share/xendma/$(krelease) $(apidest)/share/xendma 2>/dev/null

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
