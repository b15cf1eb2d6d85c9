# flexvol: one core library (flexvol/) and one binary per provider (providers/<name>/).
# make | make check | make install DESTDIR=… PLUGIN_DIR=… | make demo | make bench

BUILD      ?= build
PREFIX_VENDOR ?= flexvol
PLUGIN_DIR ?= /usr/libexec/kubernetes/kubelet-plugins/volume/exec
PYTHON     ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config
VERSION    := $(shell git describe --always --dirty 2>/dev/null || echo dev)

CORE_PKGS  := jansson mount blkid inih nettle
CSTD   := -std=gnu11 -D_GNU_SOURCE
WARN   := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
          -Wimplicit-fallthrough -Wno-missing-field-initializers -Wno-format-nonliteral -Wno-format-truncation
HARDEN := -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection \
          -fPIE -fcf-protection=full
LDHARD := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed -Wl,--gc-sections
SANFL  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -U_FORTIFY_SOURCE

ifeq ($(SAN),1)
HARDEN := $(SANFL) -fPIE
LDHARD := -pie $(SANFL)
endif

CFLAGS  ?= -g
# Headers of every library the core may use; each binary links only what its provider.mk lists.
ALL_CFLAGS = $(CSTD) $(WARN) $(HARDEN) -ffunction-sections -fdata-sections -Iflexvol \
             -DFV_VERSION='"$(VERSION)"' -DFV_HAVE_CRYPT=$(FV_HAVE_CRYPT) \
             $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS) libcurl) $(CFLAGS)
# nettle (SHA-256 of long lock keys) from its archive: loading libnettle.so costs every call,
# init included, about 40% more instructions; the few functions used cost nothing.
CORE_LIBS = $(shell $(PKG_CONFIG) --libs $(filter-out nettle,$(CORE_PKGS))) -l:libnettle.a
# Encryption at rest (flexvol/crypt.c, docs/encryption.md): libcryptsetup when its headers are
# installed. Only the block drivers reference it (--as-needed drops it from the others).
FV_HAVE_CRYPT ?= $(if $(shell $(PKG_CONFIG) --exists libcryptsetup && echo y),1,0)
ifeq ($(FV_HAVE_CRYPT),1)
CORE_LIBS += $(shell $(PKG_CONFIG) --libs libcryptsetup devmapper)
endif

CORE_SRCS := $(wildcard flexvol/*.c)
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)

include $(wildcard providers/*/provider.mk)
PROVIDERS := $(notdir $(patsubst %/,%,$(dir $(wildcard providers/*/provider.mk))))
DRIVERS   := $(PROVIDERS:%=$(BUILD)/%)

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check check-unit check-san check-build check-valgrind check-valgrind-and-bundle check-integration check-crash check-crash-and-fuzz check-vm fuzz fuzz-short \
        install demo bench lint clean deps
all: $(DRIVERS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(dir $<) -MMD -MP -c -o $@ $<
# Unit tests that include a provider's .c (to reach its static functions) depend on it too.
-include $(wildcard $(BUILD)/flexvol/*.d $(BUILD)/providers/*/*.d $(BUILD)/tests/*.d)

$(BUILD)/libflexvol.a: $(CORE_OBJS)
	$(AR) rcs $@ $^

# One binary per provider: <name>_SRCS and <name>_LIBS (pkg-config names) come from its provider.mk.
define provider_rule
$(BUILD)/$(1): $$($(1)_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libflexvol.a
	$$(CC) $$(LDHARD) -o $$@ $$^ $$(CORE_LIBS) $$(if $$($(1)_LIBS),$$(shell $$(PKG_CONFIG) --libs $$($(1)_LIBS)))
endef
$(foreach p,$(PROVIDERS),$(eval $(call provider_rule,$(p))))

# A unit test that needs more than the core libraries names them: <test>_LIBS.
test_http_token_LIBS := libcurl
$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(BUILD)/libflexvol.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP $(LDHARD) -o $@ $< $(BUILD)/libflexvol.a $(CORE_LIBS) \
	  $(if $($*_LIBS),$(shell $(PKG_CONFIG) --libs $($*_LIBS)))

# Every test tier. CI runs exactly this.
check: check-build check-unit check-san check-valgrind-and-bundle check-integration check-crash-and-fuzz check-vm

# make check runs its tiers one after the other; what builds inside them builds in parallel.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
check-build:
	$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_TESTS)

# $(call beside,BACKGROUND,FOREGROUND): make BACKGROUND (output to $(BUILD)/BACKGROUND.log) while
# FOREGROUND runs; fails if either does. Each pair is a tier that keeps one core busy and a job of
# about the same length: the static bundle's libraries (built from Debian's sources, for
# test_bundle.py) beside valgrind, the short fuzz pass beside the crash tier.
define beside
	@mkdir -p $(BUILD); $(MAKE) --no-print-directory $(1) >$(BUILD)/$(1).log 2>&1 & bg=$$!; \
	  rc=0; $(MAKE) --no-print-directory $(2) || rc=$$?; \
	  if ! wait $$bg; then echo "make $(1) failed:"; cat $(BUILD)/$(1).log; exit 1; fi; \
	  echo "make $(1), run beside make $(2):"; tail -n $(3) $(BUILD)/$(1).log; exit $$rc
endef

check-valgrind-and-bundle:
	$(call beside,bundle-static,check-valgrind,1)

check-crash-and-fuzz:
	$(call beside,fuzz-short,check-crash,10)

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do $$t; done

# The unit tests and the driver tests again with ASan+UBSan binaries. Left out: the bundle and
# installer tests (about the release build, never sanitized), the tests that mostly wait out
# timeouts and retries (the same code paths run in the faster fault tests), and the wake-up
# latency tests (a sanitized process is slower to exit than the latency they measure).
check-san:
	$(MAKE) --no-print-directory -j$(JOBS) SAN=1 BUILD=build-san all $(UNIT_TESTS:$(BUILD)/%=build-san/%)
	@set -e; for t in $(UNIT_TESTS:$(BUILD)/%=build-san/%); do ASAN_OPTIONS=detect_leaks=1 $$t; done
	ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  FLEXVOL_BUILD=build-san $(PYTHON) -m pytest -p no:cacheprovider -q --durations=5 tests/integration \
	  --ignore=tests/integration/test_bundle.py --ignore=tests/integration/test_install.py \
	  -k "not (within_bounds or slow or hung or never or stuck or retry_after or token_lifetime or in_parallel or concurrent or wakes_on)"

check-valgrind: $(UNIT_TESTS) $(DRIVERS)
	@set -e; for t in $(UNIT_TESTS); do \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $$t >/dev/null; \
	  echo "valgrind clean: $$t"; done
	@# Every driver's protocol paths, and the loop driver's lifecycle, repeats and refusals. Under
	@# valgrind openat2 is unknown (the drivers fall back to refusing every symlink, so the symlink
	@# tests do not apply) and signals reach valgrind, not the driver.
	FLEXVOL_VALGRIND=1 $(PYTHON) -m pytest -p no:cacheprovider -q tests/integration/test_loop.py \
	  tests/integration/test_protocol.py \
	  -k "(test_protocol or ((lifecycle or repeated or refused) and not concurrent)) and not logs_one_line"

check-integration: all
	$(PYTHON) -m pytest -p no:cacheprovider -v --durations=10 tests/fakes tests/integration

# Each node-side call of each block driver killed, and failing, at sampled syscalls (strace), then
# replayed as kubelet would; many volumes at once. CRASH_SAMPLES, CRASH_MAX_INTERESTING and
# CRASH_ERROR_POINTS set how many steps (tests/crash/strace_points.py); the summary counts them.
check-crash: all
	$(PYTHON) -m pytest -p no:cacheprovider -v --durations=10 tests/crash

# libFuzzer harnesses (tests/fuzz): every parser of untrusted input, built with clang's
# fuzzer, ASan and UBSan. make fuzz: FUZZ_SECONDS each; make fuzz-short (in check): FUZZ_SHORT_SECONDS.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 12
FUZZERS      := opts config nfsopts smbopts cinder gce fsopts
FUZZ_SAN     := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = $(CSTD) -Wall -Wextra -Wno-unused-function -Wno-missing-field-initializers -Iflexvol -DFV_VERSION='"fuzz"' \
                $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS) libcurl) $(FUZZ_SAN)
# Providers' files a harness links beside the one it includes (for its static parsers).
fuzz_cinder_OBJS := $(FUZZ_BUILD)/providers/cinder/doctor.o $(FUZZ_BUILD)/providers/cinder/clouds.o
fuzz_cinder_LIBS := libcurl yaml-0.1
fuzz_gce_OBJS    := $(FUZZ_BUILD)/providers/gcepd/gceutil.o $(FUZZ_BUILD)/providers/gcepd/jwt.o \
                    $(FUZZ_BUILD)/providers/gcepd/doctor.o
fuzz_gce_LIBS    := libcurl libcrypto

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -I$(dir $<) -c -o $@ $<

$(FUZZ_BUILD)/libflexvol.a: $(CORE_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	$(AR) rcs $@ $^

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libflexvol.a $$(fuzz_$$*_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -Iproviders/cinder -Iproviders/gcepd -o $@ $< \
	  $(fuzz_$*_OBJS) $(FUZZ_BUILD)/libflexvol.a $(CORE_LIBS) $(if $(fuzz_$*_LIBS),$(shell $(PKG_CONFIG) --libs $(fuzz_$*_LIBS)))

fuzz: $(FUZZERS:%=$(FUZZ_BUILD)/fuzz_%)
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZERS)

fuzz-short: $(FUZZERS:%=$(FUZZ_BUILD)/fuzz_%)
	tests/fuzz/run $(FUZZ_SHORT_SECONDS) $(FUZZ_BUILD) $(FUZZERS)

# Packaging targets (make bundle) live beside the installer.
-include install/bundle.mk

check-vm: all
	$(PYTHON) -m pytest -p no:cacheprovider -v --durations=10 tests/vm

install: all
	@set -e; for p in $(PROVIDERS); do \
	  d="$(DESTDIR)$(PLUGIN_DIR)/$(PREFIX_VENDOR)~$$p"; mkdir -p "$$d"; \
	  install -m 0755 $(BUILD)/$$p "$$d/.$$p.tmp"; mv -f "$$d/.$$p.tmp" "$$d/$$p"; \
	  echo "installed $$d/$$p"; done

demo: all
	$(PYTHON) demo/demo.py

# What nodes run is the static bundle, so that is what the targets are about.
bench: bundle-static
	bench/run --build $(BUNDLE_STATIC)

lint:
	@! grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|system|popen|tmpnam|mktemp|alloca)\s*\(' \
	  flexvol/*.c providers/*/*.c || (echo "banned function used"; false)

clean:
	rm -rf $(BUILD) build-san $(FUZZ_BUILD)
