#include "log.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The only mutable statics of the core: set once per process. */
static char log_tag[64] = "flexvol";
static const struct fv_opts *log_opts;

void fv_log_open(const char *driver)
{
	snprintf(log_tag, sizeof(log_tag), "flexvol-%s", driver);
	/* Without LOG_NDELAY the socket is opened by the first message: a call
	 * that logs nothing (a successful init) costs no syscalls here. */
	openlog(log_tag, LOG_PID, LOG_DAEMON);
}

void fv_log_redact(const struct fv_opts *opts)
{
	log_opts = opts;
}

void fv_log(int prio, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fv_opts_redact(log_opts, line);
	/* Control characters from child output would split or forge log lines. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	syslog(prio, "%s", line);
}

void fv_log_capture_stderr(void)
{
	int fd = memfd_create("flexvol-stderr", MFD_CLOEXEC);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && fd != STDERR_FILENO) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

void fv_log_flush_stderr(void)
{
	char buf[4096];
	ssize_t n = pread(STDERR_FILENO, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = buf, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line)
			fv_log(LOG_WARNING, "stderr: %s", line);
	}
}
