# Thin wrapper around CMake. `make run` and `make test` work on a fresh
# Debian 12 machine as root: missing packages are installed first.
BUILD ?= build
CONFIG ?= examples/updns.yaml
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps peers configure build run test bench clean sanitize

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

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: peers
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DUPDNS_SANITIZE=ON -DUPDNS_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan
