# Thin wrapper around CMake. `make run` and `make test` work on a fresh
# Debian 12 machine as root: missing packages are installed first.
BUILD ?= build
CONFIG ?= examples/updns.yaml
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps peers configure build run test bench clean sanitize fuzz install

all: build

deps:
	@./scripts/install-deps.sh

# Servers and clients the integration tests talk to (nsd, dig, ldns tools).
peers:
	@UPDNS_WITH_PEERS=1 ./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	mkdir -p var
	$(BUILD)/server/updnsd --config $(CONFIG)

test: peers configure
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The programs to PREFIX/sbin, the systemd unit to PREFIX/lib/systemd/system,
# the README and examples to PREFIX/share/doc/updns; then the `updns` user
# and /etc/updns (existing files are kept). DESTDIR stages for packaging.
PREFIX ?= /usr/local
install: configure
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS) --target updnsd updnsctl
	cmake --install $(BUILD)
	./scripts/install-system.sh

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
SANITIZE_BUILD ?= build-asan
sanitize: peers
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DUPDNS_SANITIZE=ON -DUPDNS_BENCH=OFF
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	cd $(SANITIZE_BUILD) && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target (tests/fuzz/README.md) for FUZZ_SECONDS, from its
# seed corpus, built with clang, ASan and UBSan; fails if one crashes.
# FUZZ_SEED=N fixes libFuzzer's seed (CI uses 1), which repeats a run on the
# same machine; unset, each run explores new inputs.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= query http json_api config zone_file tsig rfc2136 dns_control
FUZZ_SEED ?=
fuzz:
	@UPDNS_WITH_FUZZ=1 ./scripts/install-deps.sh
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DUPDNS_FUZZ=ON -DUPDNS_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addprefix updns_fuzz_,$(FUZZ_TARGETS))
	FUZZ_SEED=$(FUZZ_SEED) ./tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) build-asan
