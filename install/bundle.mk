# make bundle DESTDIR=<dir> [PLUGIN_DIR=…] [PREFIX_VENDOR=…]
#
# The installable tree: $(DESTDIR)$(PLUGIN_DIR)/$(PREFIX_VENDOR)~<driver>/<driver>, the layout
# `make install` uses, one driver per provider. Each <driver> is a static-pie executable: it needs
# nothing from the node but the kernel (no libc, jansson, libmount, libcurl…), so it also runs
# inside a distroless kube-controller-manager container. Tools a driver execs (mkfs.*, mount.nfs…)
# stay the node's. Why static and not a launcher with private libraries: docs/install.md
# ("Why static binaries") has the measurements.
#
# Debian ships no static libmount, and its static libcurl needs LDAP/Kerberos/SSH archives it
# does not ship either; install/build-deps.sh builds both from the Debian sources of the installed
# -dev versions into $(BUNDLE_DEPS) (once; later runs only check the versions).
#
#   make bundle-static   the static drivers in $(BUNDLE_STATIC)/<driver> (with debug info)
#   make bundle-check    the static drivers have no interpreter and no DT_NEEDED entry
#   make image-rootfs    the DaemonSet image's whole root file system (install/build-bundle.sh)

BUNDLE_DEPS   ?= $(BUILD)/bundle-deps
# static-pie keeps ASLR for the driver itself. BUNDLE_PIE=0 links plain -static: faster init for the
# big cloud drivers (OpenSSL's relocations), no ASLR of the executable (docs/install.md has figures).
BUNDLE_PIE ?= 1
BUNDLE_STATIC ?= $(BUILD)/static$(if $(filter 1,$(BUNDLE_PIE)),,-nopie)
BUNDLE_LDFLAGS := $(if $(filter 1,$(BUNDLE_PIE)),-static-pie,-static) -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
                  -Wl,--gc-sections
STRIP         ?= strip
READELF       ?= readelf

# libcurl is built from source only when some provider links it.
BUNDLE_NEEDS_CURL := $(strip $(foreach p,$(PROVIDERS),$(filter libcurl,$($(p)_LIBS))))
BUNDLE_COMPONENTS := util-linux $(if $(BUNDLE_NEEDS_CURL),curl)
BUNDLE_DRIVERS    := $(PROVIDERS:%=$(BUNDLE_STATIC)/%)

# Our static archives first, then Debian's (jansson, inih, OpenSSL, zlib ship static archives).
bundle_pkgconfig = PKG_CONFIG_PATH=$(abspath $(BUNDLE_DEPS))/lib/pkgconfig $(PKG_CONFIG) --static

.PHONY: bundle bundle-deps bundle-static bundle-check image-rootfs

# Refuse before building anything: without DESTDIR the tree would land in the real plugin dir.
ifneq ($(filter bundle image-rootfs,$(MAKECMDGOALS)),)
ifeq ($(DESTDIR),)
$(error make $(filter bundle image-rootfs,$(MAKECMDGOALS)) needs DESTDIR=<dir> (the tree is built under it))
endif
endif

bundle-deps:
ifeq ($(SAN),1)
	$(error the bundle is a release artifact: build it without SAN=1)
endif
	sh install/build-deps.sh $(BUNDLE_DEPS) $(BUNDLE_COMPONENTS)

# Encryption at rest is left out of the static drivers: Debian ships no libcryptsetup.a, and
# building cryptsetup and lvm2's libdevmapper from source here costs more than it is worth
# (docs/encryption.md, "The static bundle"). The core archive gets crypt.c built with
# FV_HAVE_CRYPT=0, which refuses encrypted volumes with a message saying why.
BUNDLE_CORE := $(BUILD)/bundle-core/libflexvol.a
$(BUILD)/bundle-core/crypt.o: flexvol/crypt.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -UFV_HAVE_CRYPT -DFV_HAVE_CRYPT=0 -Iflexvol -c -o $@ $<
$(BUNDLE_CORE): $(BUILD)/libflexvol.a $(BUILD)/bundle-core/crypt.o
	cp $(BUILD)/libflexvol.a $@.tmp
	$(AR) d $@.tmp crypt.o
	$(AR) rcs $@.tmp $(BUILD)/bundle-core/crypt.o
	mv -f $@.tmp $@

# The static link reuses the objects of `make all` (compiled -fPIE against the same headers).
# The link rules run in a sub-make, after bundle-deps has brought the archives up to date.
define bundle_static_rule
$(BUNDLE_STATIC)/$(1): $$($(1)_SRCS:%.c=$(BUILD)/%.o) $(BUNDLE_CORE) $(wildcard $(BUNDLE_DEPS)/lib/*.a)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BUNDLE_LDFLAGS) -o $$@ $$(filter-out $(BUNDLE_DEPS)/%,$$(filter %.o %.a,$$^)) \
	  $$(shell $$(bundle_pkgconfig) --libs $$(CORE_PKGS) $$($(1)_LIBS)) 2>$$@.warnings \
	  || { cat $$@.warnings >&2; exit 1; }
	@# glibc warns that getpwnam & co in libmount need NSS at run time; the drivers never call them.
	@grep -v -e 'in statically linked applications requires at runtime' -e ': in function ' $$@.warnings >&2 || true
	@rm -f $$@.warnings
endef
$(foreach p,$(PROVIDERS),$(eval $(call bundle_static_rule,$(p))))

bundle-static: bundle-deps all
	@$(MAKE) --no-print-directory $(BUNDLE_DRIVERS)

bundle-check: bundle-static
	@set -e; for f in $(BUNDLE_DRIVERS); do \
	  if $(READELF) -lW $$f | grep -q 'Requesting program interpreter'; then echo "$$f has an ELF interpreter"; exit 1; fi; \
	  if $(READELF) -dW $$f | grep -q '(NEEDED)'; then echo "$$f needs shared libraries:"; $(READELF) -dW $$f | grep NEEDED; exit 1; fi; \
	done; echo "bundle-check: $(notdir $(BUNDLE_DRIVERS)) are static"

# Same layout and same dot-file + rename as `make install`.
bundle: bundle-check
	@set -e; for p in $(PROVIDERS); do \
	  d="$(DESTDIR)$(PLUGIN_DIR)/$(PREFIX_VENDOR)~$$p"; mkdir -p "$$d"; chmod 0755 "$$d"; \
	  $(STRIP) --strip-debug -o "$$d/.$$p.tmp" $(BUNDLE_STATIC)/$$p; chmod 0755 "$$d/.$$p.tmp"; \
	  mv -f "$$d/.$$p.tmp" "$$d/$$p"; echo "bundled $$d/$$p"; done

# The DaemonSet image's root file system; the Dockerfile copies exactly this.
image-rootfs:
	sh install/build-bundle.sh $(DESTDIR)
