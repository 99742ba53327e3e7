// SPDX-License-Identifier: MIT
/*
 * UMap's C++ custom store, as UMap documents it: a class derived from
 * Umap::Store (read_from_store, write_to_store) mapped with
 * Umap::umap_ex, built against <umap/umap.h> with a C++ compiler and
 * linked with libfaultline-umap.  Prints the suite's PASS/FAIL/SKIP/
 * SUMMARY lines.
 */
#include <umap/umap.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static int failed_checks;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			std::printf("  test_umap_cxx: %s:%d: CHECK(%s) "       \
				    "errno=%d\n",                              \
				    __FILE__, __LINE__, #cond, errno);         \
			failed_checks++;                                       \
		}                                                              \
	} while (0)

/* Pages in memory, counting the calls. */
class MemoryStore : public Umap::Store
{
      public:
	explicit MemoryStore(size_t size) : data(size), reads(0), writes(0)
	{
		for (size_t i = 0; i < size / sizeof(uint64_t); i++)
			word(i) = i * 7 + 1;
	}
	ssize_t read_from_store(char *buf, size_t nb, off_t off) override
	{
		reads++;
		if (static_cast<size_t>(off) >= data.size())
			return 0;
		if (nb > data.size() - off)
			nb = data.size() - off;
		std::memcpy(buf, &data[off], nb);
		return static_cast<ssize_t>(nb);
	}
	ssize_t write_to_store(char *buf, size_t nb, off_t off) override
	{
		writes++;
		if (static_cast<size_t>(off) + nb > data.size()) {
			errno = ENOSPC;
			return -1;
		}
		std::memcpy(&data[off], buf, nb);
		return static_cast<ssize_t>(nb);
	}
	uint64_t &word(size_t i)
	{
		return reinterpret_cast<uint64_t *>(data.data())[i];
	}

	std::vector<char> data;
	std::atomic<long> reads, writes;
};

int main()
{
	const size_t size = 1 << 20;
	const size_t words = size / sizeof(uint64_t);
	MemoryStore store(size);
	size_t bad = 0;

	setenv("UMAP_BUFSIZE", "64", 1); /* 256 KiB: evictions */
	uint64_t *p = static_cast<uint64_t *>(
		Umap::umap_ex(nullptr, size, PROT_READ | PROT_WRITE,
			      UMAP_PRIVATE, -1, 0, &store));
	if (p == UMAP_FAILED && (errno == EPERM || errno == ENOSYS)) {
		std::printf("SKIP test_umap_cxx: userfaultfd not permitted or "
			    "lacking a feature (%s)\n",
			    std::strerror(errno));
		return 77;
	}
	CHECK(p != UMAP_FAILED);
	if (p != UMAP_FAILED) {
		for (size_t i = 0; i < words; i++) {
			bad += p[i] != i * 7 + 1;
			p[i] = i * 3;
		}
		CHECK(bad == 0);
		CHECK(store.reads > 0);
		CHECK(umap_flush() == 0);
		bad = 0;
		for (size_t i = 0; i < words; i++)
			bad += store.word(i) != i * 3;
		CHECK(bad == 0);
		CHECK(store.writes > 0);
		CHECK(uunmap(p, size) == 0);
	}
	/* A refused region leaves the store alone. */
	errno = 0;
	CHECK(Umap::umap_ex(nullptr, size, PROT_READ, 0, -1, 0, &store) ==
		      UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(Umap::umap_ex(nullptr, size, PROT_READ, UMAP_PRIVATE, -1, 0,
			    nullptr) == UMAP_FAILED &&
	      errno == EINVAL);
	std::printf("%s test_umap_cxx.umap_ex_store\n",
		    failed_checks ? "FAIL" : "PASS");
	std::printf("SUMMARY test_umap_cxx: %d passed, %d failed\n",
		    failed_checks ? 0 : 1, failed_checks ? 1 : 0);
	return failed_checks ? 1 : 0;
}
