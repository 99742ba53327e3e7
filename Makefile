# faultline build.  `make` builds the library and the program, `make test`
# runs the suite, `make sanitize` runs it under ASan+UBSan, `make check`
# (what CI runs) runs it with gcc and clang, each plain and under ASan+UBSan,
# and checks the shared library's exports.
PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD      ?= build
CC         ?= cc
CFLAGS     ?= -O2 -g
SANFLAGS   ?=
WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wno-unused-parameter
ALLCFLAGS  := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -fPIC \
              -Iinclude -Isrc
LDLIBS     := -pthread

# io_uring for asynchronous store reads, where liburing is installed
# (Debian: liburing-dev); without it the I/O threads serve every read.
HAVE_LIBURING := $(shell pkg-config --exists liburing 2>/dev/null && echo 1 || \
                   { test -f /usr/include/liburing.h && echo 1; })
ifeq ($(HAVE_LIBURING),1)
ALLCFLAGS  += -DFL_HAVE_LIBURING
LDLIBS     += -luring
endif

# Optional libraries, each detected at build time; the core builds and its
# tests pass without them.  zstd and lz4 compress blocks and swapped pages
# (Debian: libzstd-dev, liblz4-dev); hiredis talks to Redis
# (libhiredis-dev).  FL_NO_<NAME>=1 builds without one even where it is.
have_pkg = $(if $(FL_NO_$(1)),,$(shell pkg-config --exists $(2) 2>/dev/null              && echo 1 || { test -f /usr/include/$(3) && echo 1; }))
HAVE_ZSTD     := $(call have_pkg,ZSTD,libzstd,zstd.h)
HAVE_LZ4      := $(call have_pkg,LZ4,liblz4,lz4.h)
HAVE_HIREDIS  := $(call have_pkg,HIREDIS,hiredis,hiredis/hiredis.h)
ifeq ($(HAVE_ZSTD),1)
ALLCFLAGS  += -DFL_HAVE_ZSTD
LDLIBS     += -lzstd
endif
ifeq ($(HAVE_LZ4),1)
ALLCFLAGS  += -DFL_HAVE_LZ4
LDLIBS     += -llz4
endif
ifeq ($(HAVE_HIREDIS),1)
ALLCFLAGS  += -DFL_HAVE_HIREDIS
LDLIBS     += -lhiredis
endif
# What a static link needs beside the library (faultline.pc Libs.private).
LIBS_PRIVATE := $(filter-out -pthread,$(LDLIBS))

LIB_SRC    := $(sort $(wildcard src/*.c))
TOOL_SRC   := $(sort $(wildcard tools/*.c bench/*.c))
TEST_SRC   := $(sort $(wildcard tests/test_*.c))
TEST_LIB   := $(sort $(filter-out tests/test_%.c,$(wildcard tests/*.c)))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ   := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TESTLIB_OBJ:= $(TEST_LIB:%.c=$(BUILD)/%.o)
TEST_BIN   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

STATIC     := $(BUILD)/libfaultline.a
SHARED     := $(BUILD)/libfaultline.so
PROGRAM    := $(BUILD)/faultline

.PHONY: all test sanitize clang clang-sanitize tsan check check-exports demo \
        install uninstall clean format format-check test-no-io-uring \
        test-local-poller \
        test-python
all: $(STATIC) $(SHARED) $(PROGRAM)

# Quiet by default; `make V=1` shows the commands.
Q          := $(if $(V),,@)

# Test objects are intermediate; keep them so nothing rebuilds twice.
.SECONDARY:

HEADERS    := $(wildcard include/*.h src/*.h tests/*.h bench/*.h tools/*.h)

$(BUILD)/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALLCFLAGS) -c $< -o $@

# The tests link a second copy of the library with failure injection
# (tests/inject.h): its calls to the allocator, the userfaultfd ioctls,
# fallocate, madvise, thread creation and more can be failed on demand.
# The library that is installed has none of it.  FL_DEBUG: the locking
# contracts are asserted too.
INJ_OBJ    := $(LIB_SRC:%.c=$(BUILD)/inject/%.o)
INJ_LIB    := $(BUILD)/libfaultline-inject.a
INJ_FLAGS  := -DFL_INJECT -DFL_DEBUG -include tests/inject.h

$(BUILD)/inject/src/%.o: src/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (inject)")
	$(Q)$(CC) $(ALLCFLAGS) $(INJ_FLAGS) -c $< -o $@

$(INJ_LIB): $(INJ_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# Only the public fl_ API is exported (src/libfaultline.map).
LIB_MAP    := src/libfaultline.map

$(SHARED): $(LIB_OBJ) $(LIB_MAP)
	$(Q)$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libfaultline.so.0 \
	    -Wl,--version-script,$(LIB_MAP) -o $@ $(LIB_OBJ) $(LDLIBS)

$(PROGRAM): $(TOOL_OBJ) $(STATIC)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lm

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TESTLIB_OBJ) $(INJ_LIB)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lm

# The bench's uffd-minimal baseline is tested on its own.
$(BUILD)/tests/test_uffd_minimal: $(BUILD)/tests/test_uffd_minimal.o \
		$(BUILD)/bench/uffd_minimal.o $(TESTLIB_OBJ) $(INJ_LIB)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lm

EXAMPLE    := $(BUILD)/examples/hello

$(EXAMPLE): $(BUILD)/examples/hello.o $(STATIC)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

# BUILD_ONLY=1: build what the run needs, run nothing (make check builds
# every run's binaries first, then runs them side by side).
test: $(TEST_BIN) $(PROGRAM) $(EXAMPLE)
	@$(if $(BUILD_ONLY),:,tests/run.sh $(BUILD))

demo: $(PROGRAM)
	$(PROGRAM) demo

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer, and
# both again built by clang.  Each has a build directory of its own, named
# after BUILD (build-san, build-clang, build-clang-san by default).
CLANG      ?= clang
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all

# The man-page and install checks test files, not code: the plain run
# does them, the other builds leave them out (and say so).
ONCE_TESTS := test_man test_install
SKIP_ONCE  := FL_SKIP="$(ONCE_TESTS) $$FL_SKIP"

sanitize:
	$(SKIP_ONCE) $(MAKE) BUILD=$(BUILD)-san CFLAGS="$(SAN_CFLAGS)" \
	    SANFLAGS="$(SAN_FLAGS)" test

clang:
	$(SKIP_ONCE) $(MAKE) CC=$(CLANG) BUILD=$(BUILD)-clang test

# The injection sweep's runs check for leaks in the gcc sanitizer run only
# (FL_INJECT_LEAK_CHECK: the check costs a run more than the run itself,
# and a leak is the code's, not the compiler's); every other test of this
# run still checks.
clang-sanitize:
	FL_INJECT_LEAK_CHECK=0 $(SKIP_ONCE) $(MAKE) CC=$(CLANG) \
	    BUILD=$(BUILD)-clang-san \
	    CFLAGS="$(SAN_CFLAGS)" SANFLAGS="$(SAN_FLAGS)" test

# ThreadSanitizer, where it works (not in CI).  Left out: test_stress, whose
# threads share memory through mappings on purpose (a race by design), and
# test_retry, whose churn case stalls inside TSan's own thread creation
# while other threads are blocked in userfaultfd waits (and reads memory
# that another thread remaps, a race by design), and whose signal cases
# count faults that TSan changes: it runs a signal handler only after the
# interrupted load, so the handler's fault is no longer a second major one.
# Its other cases pass under TSan.
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g" SANFLAGS="-fsanitize=thread" \
	    $(TEST_BIN:$(BUILD)/%=build-tsan/%) build-tsan/faultline
	FL_SKIP="test_stress test_retry" tests/run.sh build-tsan

# The shared library exports the public API only: every dynamic symbol it
# defines starts with fl_ (or is the version node FAULTLINE_*), and every
# function the header declares is among them.
check-exports: $(SHARED)
	@bad=$$(nm -D --defined-only $(SHARED) | awk '{print $$NF}' | \
	    grep -v -e '^fl_' -e '^FAULTLINE_'); \
	if [ -n "$$bad" ]; then \
	    echo "FAIL check-exports: $(SHARED) exports internal symbols:"; \
	    echo "$$bad" | sed 's/^/  /'; exit 1; fi
	@missing=$$($(CC) -E -P -Iinclude include/faultline.h | \
	    grep -oE '\bfl_[a-z0-9_]+ *\([^*]' | sed 's/ *(.*//' | sort -u | \
	    while read f; do nm -D --defined-only $(SHARED) | \
	    grep -q " $$f@" || echo "$$f"; done); \
	if [ -n "$$missing" ]; then \
	    echo "FAIL check-exports: declared but not exported:"; \
	    echo "$$missing" | sed 's/^/  /'; exit 1; fi
	@echo "PASS check-exports ($$(nm -D --defined-only $(SHARED) | \
	    grep -c ' fl_') fl_ symbols, nothing else)"

# What CI runs: the exports, then the suite four times (gcc, gcc with
# ASan+UBSan, clang, clang with ASan+UBSan), and the plain gcc suite twice
# more: with io_uring turned off (FAULTLINE_IO_URING=0: the I/O-thread path
# for file stores), and with local polling turned on (FAULTLINE_POLL_LOCAL=1:
# a poller on every CPU; off by default); and the Python package's tests.
# Every run goes on after a failure; the last line adds them up.  Each run
# builds with a job per CPU (CHECK_JOBS); a run's tests run one at a time.
CHECK_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

test-no-io-uring:
	FAULTLINE_IO_URING=0 $(SKIP_ONCE) $(MAKE) --no-print-directory test

test-local-poller:
	FAULTLINE_POLL_LOCAL=1 $(SKIP_ONCE) $(MAKE) --no-print-directory test

# The Python package's tests (pytest; skipped, saying why, without it),
# against the shared library built here with FL_DEBUG (in BUILD-debug): the
# contracts and the ownership checks of fault records (page.h) are asserted
# there too, as in the C tests.
DEBUG_SHARED := $(BUILD)-debug/libfaultline.so

test-python:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)-debug \
	    CFLAGS="$(CFLAGS) -DFL_DEBUG" $(DEBUG_SHARED)
	@$(if $(BUILD_ONLY),:,FAULTLINE_LIBRARY=$(abspath $(DEBUG_SHARED)) \
	    tests/python/run.sh)

# Every run's binaries are built first; then the runs go in groups, a
# group's runs side by side (tests/check.sh says why; CHECK_PARALLEL=0: one
# at a time): each sanitizer run beside a plain one.
CHECK_GROUPS := sanitize:test-local-poller clang-sanitize:test-no-io-uring \
	clang:test:test-python

check:
	@MAKE="$(MAKE)" CHECK_JOBS=$(CHECK_JOBS) tests/check.sh $(CHECK_GROUPS)

# ---- UMap-compatible library, man pages, packaging (umap/, man/) --------
# libfaultline-umap.so: LLNL UMap's C API (umap/umap.h) on faultline,
# exporting UMap's calls only (umap/libfaultline-umap.map); it needs
# libfaultline.so.0.  docs/umap.md says where it differs from UMap.
VERSION    := $(shell sed -n 's/^\#define FAULTLINE_VERSION "\(.*\)"/\1/p' \
                include/faultline.h)
UMAP_SRC   := $(sort $(wildcard umap/*.c))
UMAP_OBJ   := $(UMAP_SRC:%.c=$(BUILD)/%.o)
UMAP_MAP   := umap/libfaultline-umap.map
UMAP_LIB   := $(BUILD)/libfaultline-umap.so
UMAP_TESTS := $(BUILD)/tests/test_umap

all: $(UMAP_LIB)

$(UMAP_OBJ): umap/umap.h umap/umap_int.h

# The build tree also has the sonames, so that programs linked here run.
$(BUILD)/libfaultline.so.0: $(SHARED)
	$(Q)ln -sf libfaultline.so $@

$(BUILD)/libfaultline-umap.so.0: $(UMAP_LIB)
	$(Q)ln -sf libfaultline-umap.so $@

$(UMAP_LIB): $(UMAP_OBJ) $(UMAP_MAP) $(SHARED) $(BUILD)/libfaultline.so.0
	$(Q)$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libfaultline-umap.so.0 \
	    -Wl,--version-script,$(UMAP_MAP) -o $@ $(UMAP_OBJ) \
	    -L$(BUILD) -lfaultline $(LDLIBS)

# The UMap test: a program using UMap's documented API only, built
# against umap/umap.h as <umap/umap.h> and linked with libfaultline-umap
# (an RPATH, which the loader also uses for its libfaultline.so.0).
$(BUILD)/tests/test_umap: tests/umap/test_umap.c umap/umap.h include/faultline.h \
              $(UMAP_LIB) $(BUILD)/libfaultline-umap.so.0
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALLCFLAGS) -I. -o $@ $< -L$(BUILD) -lfaultline-umap \
	    -Wl,--disable-new-dtags,-rpath,$(abspath $(BUILD))

# The same for UMap's C++ custom store (Umap::Store, Umap::umap_ex), built
# with the C++ compiler that goes with CC, where it is installed.
UMAP_CXX   ?= $(if $(findstring clang,$(CC)),$(subst clang,clang++,$(CC)),g++)
ifneq ($(shell command -v $(UMAP_CXX) 2>/dev/null),)
UMAP_TESTS += $(BUILD)/tests/test_umap_cxx
endif

$(BUILD)/tests/test_umap_cxx: tests/umap/test_umap_cxx.cpp umap/umap.h \
              include/faultline.h $(UMAP_LIB) $(BUILD)/libfaultline-umap.so.0
	@mkdir -p $(dir $@)
	$(Q)$(UMAP_CXX) -std=c++11 -Wall -Wextra -Werror $(CFLAGS) $(SANFLAGS) \
	    -pthread -I. -Iinclude -o $@ $< -L$(BUILD) -lfaultline-umap \
	    -Wl,--disable-new-dtags,-rpath,$(abspath $(BUILD))

# Shell-script tests run by tests/run.sh like the test binaries: a
# wrapper in $(BUILD)/tests names the build they check.
#   test_man      every exported fl_ symbol has a section-3 page; every
#                 page renders without warnings (tests/test_man.sh)
#   test_install  make install DESTDIR=... PREFIX=/usr, then build and run
#                 examples/hello.c (pkg-config, shared and static) and the
#                 UMap test against the staged tree (tests/test_install.sh)
SCRIPT_TESTS := $(BUILD)/tests/test_man $(BUILD)/tests/test_install

$(SCRIPT_TESTS): $(BUILD)/tests/%: tests/%.sh Makefile
	@mkdir -p $(dir $@)
	$(Q){ echo '#!/bin/sh'; \
	  echo "FL_SRC='$(CURDIR)' FL_BUILD='$(abspath $(BUILD))'"; \
	  echo "FL_CC='$(CC)' FL_CFLAGS='$(CFLAGS)' FL_SANFLAGS='$(SANFLAGS)'"; \
	  echo "FL_NO='FL_NO_ZSTD=$(FL_NO_ZSTD) FL_NO_LZ4=$(FL_NO_LZ4) FL_NO_HIREDIS=$(FL_NO_HIREDIS)'"; \
	  echo 'export FL_SRC FL_BUILD FL_CC FL_CFLAGS FL_SANFLAGS FL_NO'; \
	  echo 'exec "$$FL_SRC/tests/$(notdir $@).sh" "$$@"'; } > $@
	$(Q)chmod +x $@

test: $(UMAP_TESTS) $(SCRIPT_TESTS)

# Man pages: section 3 for every public call (one page per call or per
# family; the other calls of a family are .so links), section 1 for the
# program.
MAN1       := $(sort $(wildcard man/man1/*.1))
MAN3       := $(sort $(wildcard man/man3/*.3))
LIBDIR     := $(DESTDIR)$(PREFIX)/lib
MANDIR     := $(DESTDIR)$(PREFIX)/share/man

install: all
	install -d $(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/umap \
	    $(DESTDIR)$(PREFIX)/bin $(MANDIR)/man1 $(MANDIR)/man3
	install -m 644 $(STATIC) $(LIBDIR)/
	install -m 755 $(SHARED) $(LIBDIR)/libfaultline.so.$(VERSION)
	ln -sf libfaultline.so.$(VERSION) $(LIBDIR)/libfaultline.so.0
	ln -sf libfaultline.so.0 $(LIBDIR)/libfaultline.so
	install -m 755 $(UMAP_LIB) $(LIBDIR)/libfaultline-umap.so.$(VERSION)
	ln -sf libfaultline-umap.so.$(VERSION) $(LIBDIR)/libfaultline-umap.so.0
	ln -sf libfaultline-umap.so.0 $(LIBDIR)/libfaultline-umap.so
	install -m 644 include/faultline.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 umap/umap.h $(DESTDIR)$(PREFIX)/include/umap/
	install -m 755 $(PROGRAM) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MAN1) $(MANDIR)/man1/
	install -m 644 $(MAN3) $(MANDIR)/man3/
	for pc in faultline faultline-umap; do \
	    sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	        -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' \
	        $$pc.pc.in > $(LIBDIR)/pkgconfig/$$pc.pc || exit 1; \
	done

uninstall:
	rm -f $(LIBDIR)/libfaultline.a $(LIBDIR)/libfaultline.so* \
	    $(LIBDIR)/libfaultline-umap.so* \
	    $(DESTDIR)$(PREFIX)/include/faultline.h \
	    $(DESTDIR)$(PREFIX)/include/umap/umap.h \
	    $(DESTDIR)$(PREFIX)/bin/faultline \
	    $(LIBDIR)/pkgconfig/faultline.pc \
	    $(LIBDIR)/pkgconfig/faultline-umap.pc \
	    $(MAN1:man/%=$(MANDIR)/%) $(MAN3:man/%=$(MANDIR)/%)
	-rmdir $(DESTDIR)$(PREFIX)/include/umap

# ---- end of the UMap, man and packaging block --------------------------

FORMAT_SRC := $(LIB_SRC) $(TOOL_SRC) $(TEST_SRC) $(TEST_LIB) examples/*.c \
              include/*.h src/*.h $(wildcard tools/*.h bench/*.h tests/*.h)
FORMAT_SRC += $(UMAP_SRC) umap/*.h tests/umap/*.c tests/umap/*.cpp # UMap block

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-san build-clang build-clang-san build-tsan build-debug
