/* The README's example: map a file shared through faultline, change a
 * byte, write it back, and read the statistics. */
#include <faultline.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "data.bin";
	fl_engine *engine = fl_engine_create(NULL); /* defaults + FAULTLINE_* */
	fl_object *file;
	struct fl_stats stats;
	char *p;

	if (!engine) {
		perror("fl_engine_create");
		return 1;
	}
	file = fl_object_open(engine, path, O_RDWR);
	if (!file) {
		perror(path);
		return 1;
	}
	p = fl_mmap(engine, NULL, fl_object_size(file), PROT_READ | PROT_WRITE,
		    MAP_SHARED, file, 0);
	if (p == MAP_FAILED) {
		perror("fl_mmap");
		return 1;
	}
	printf("first byte: %d\n", p[0]);	/* a real page fault, served */
	p[0] ^= 1;				/* marks the page dirty */
	if (fl_msync(engine, p, 4096, MS_SYNC)) /* written back, or EIO */
		perror("fl_msync");
	fl_mapping_stats(engine, p, &stats);
	printf("major %llu minor %llu written %llu\n",
	       (unsigned long long)stats.major_faults,
	       (unsigned long long)stats.minor_faults,
	       (unsigned long long)stats.pages_written);
	fl_munmap(engine, p, fl_object_size(file));
	fl_object_close(file);
	return fl_engine_destroy(engine) ? 1 : 0;
}
