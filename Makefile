# xentmem: Xen tmem tools and the cowd remapper. `make help` lists targets.

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   := $(DESTDIR)$(PREFIX)/bin
SBINDIR  := $(DESTDIR)$(PREFIX)/sbin
MANDIR   := $(DESTDIR)$(PREFIX)/share/man
CACHE    ?= $(CURDIR)/.cache
BINARIES := tmemctl
CMDS     := $(wildcard cmd/*)
GOFLAGS_TEST ?= -race -timeout 40m

export XENTMEM_CACHE := $(CACHE)/xen

.PHONY: all build test test-short run bench lint vet deps install uninstall clean help

all: build

help:
	@echo "make run        run the main job (tmemctl xen-info; the daemon once it exists)"
	@echo "make test       install test dependencies (as root), vet, and run every test"
	@echo "make test-short unit tests only, no Xen boot, no apt"
	@echo "make bench      benchmarks with ratios"
	@echo "make build      build all binaries into bin/"
	@echo "make lint       gofmt, go vet, and the import rules"
	@echo "make install    install binaries and man pages (PREFIX, DESTDIR)"

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

run: build
	./bin/tmemctl xen-info || { code=$$?; echo "(xen-info exits $$code when this machine is not a Xen dom0; see the message above)"; exit 0; }

deps:
	@./.ci/deps.sh

# The full suite: unit tests with -race, fuzz seeds, the layout check
# against libxen-dev, cowd interop with qemu/nbd tools, and a real Xen 4.17
# booted under QEMU (internal/xentest). Under CI=true nothing may skip for a
# missing component.
test: deps lint
	$(GO) test $(GOFLAGS_TEST) ./...

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./hypercall/... ./xenctl/... ./pools/... ./cowd/...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@./.ci/imports.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./hypercall/... ./xenctl/...

install: build
	install -d $(SBINDIR) $(MANDIR)/man8
	for b in bin/*; do install -m 0755 $$b $(SBINDIR)/; done
	for m in docs/*.8; do [ -f "$$m" ] && install -m 0644 $$m $(MANDIR)/man8/ || true; done

uninstall:
	for b in bin/*; do rm -f $(SBINDIR)/$$(basename $$b); done
	for m in docs/*.8; do rm -f $(MANDIR)/man8/$$(basename $$m); done

clean:
	rm -rf bin
