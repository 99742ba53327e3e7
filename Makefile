# faultline build.  `make` builds the library and the program, `make test`
# runs the suite, `make sanitize` runs it under ASan+UBSan.
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

.PHONY: all test sanitize tsan check demo install uninstall clean format format-check
all: $(STATIC) $(SHARED) $(PROGRAM)

# Quiet by default; `make V=1` shows the commands.
Q          := $(if $(V),,@)

# Test objects are intermediate; keep them so nothing rebuilds twice.
.SECONDARY:

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*.h tests/*.h bench/*.h tools/*.h) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALLCFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(Q)$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libfaultline.so.0 -o $@ $^ $(LDLIBS)

$(PROGRAM): $(TOOL_OBJ) $(STATIC)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lm

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TESTLIB_OBJ) $(STATIC)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lm

EXAMPLE    := $(BUILD)/examples/hello

$(EXAMPLE): $(BUILD)/examples/hello.o $(STATIC)
	$(Q)$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

test: $(TEST_BIN) $(PROGRAM) $(EXAMPLE)
	@tests/run.sh $(BUILD)

demo: $(PROGRAM)
	$(PROGRAM) demo

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize:
	$(MAKE) BUILD=build-san CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" test

# ThreadSanitizer, where it works (not in CI).  Left out: test_stress, whose
# threads share memory through mappings on purpose (a race by design), and
# test_retry, whose churn case stalls inside TSan's own thread creation
# while other threads are blocked in userfaultfd waits.
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g" SANFLAGS="-fsanitize=thread" \
	    $(TEST_BIN:$(BUILD)/%=build-tsan/%) build-tsan/faultline
	FL_SKIP="test_stress test_retry" tests/run.sh build-tsan

# What CI runs: the suite, then the suite under the sanitizers.
check: test
	$(MAKE) sanitize

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libfaultline.so.0
	ln -sf libfaultline.so.0 $(DESTDIR)$(PREFIX)/lib/libfaultline.so
	install -m 644 include/faultline.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(PROGRAM) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' faultline.pc.in > \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/faultline.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libfaultline.a \
	    $(DESTDIR)$(PREFIX)/lib/libfaultline.so* \
	    $(DESTDIR)$(PREFIX)/include/faultline.h \
	    $(DESTDIR)$(PREFIX)/bin/faultline \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/faultline.pc

FORMAT_SRC := $(LIB_SRC) $(TOOL_SRC) $(TEST_SRC) $(TEST_LIB) examples/*.c \
              include/*.h src/*.h $(wildcard tools/*.h bench/*.h tests/*.h)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-san build-tsan
