/* Times a command (or a pair: A then B) over many runs with fork+exec and
 * prints the 10th percentile of the wall time of one run in microseconds: the
 * cost with the least disturbance from whatever else the machine is doing. Written in C so the
 * measuring overhead is the same tiny constant for the floor and the driver. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static posix_spawn_file_actions_t quiet;

static int run(char **argv)
{
	pid_t pid;
	int status;
	if (posix_spawn(&pid, argv[0], &quiet, NULL, argv, environ))
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 4 || strcmp(argv[2], "--")) {
		fprintf(stderr, "usage: timer RUNS -- CMD... [--then CMD...]\n");
		return 2;
	}
	int runs = atoi(argv[1]);
	/* The command's reply is not part of what is measured. */
	posix_spawn_file_actions_init(&quiet);
	posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", 1 /* O_WRONLY */, 0);
	posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", 1, 0);
	char **a = argv + 3, **b = NULL;
	for (char **p = a; *p; p++)
		if (!strcmp(*p, "--then")) {
			*p = NULL;
			b = p + 1;
			break;
		}
	double *us = calloc((size_t)runs, sizeof(double));
	for (int i = 0; i < runs; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (run(a) != 0 || (b && run(b) != 0)) {
			fprintf(stderr, "timer: command failed\n");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	qsort(us, (size_t)runs, sizeof(double), cmp);
	printf("%.1f\n", us[runs / 10]);
	return 0;
}
