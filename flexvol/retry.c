#include "retry.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "clock.h"
#include "flexvol.h"

struct fv_retry_policy fv_retry_defaults(const struct fv_retry_policy *p)
{
	struct fv_retry_policy r = p ? *p : (struct fv_retry_policy){0};
	if (r.max_attempts <= 0)
		r.max_attempts = FV_RETRY_DEFAULT_ATTEMPTS;
	if (r.base_ms <= 0)
		r.base_ms = FV_RETRY_DEFAULT_BASE_MS;
	if (r.cap_ms <= 0)
		r.cap_ms = FV_RETRY_DEFAULT_CAP_MS;
	if (r.max_retry_after_ms <= 0)
		r.max_retry_after_ms = FV_RETRY_DEFAULT_MAX_RETRY_AFTER_MS;
	return r;
}

/* Jitter needs no cryptographic quality, only a different sequence in each
 * of several drivers started in the same second. */
static unsigned long jitter_random(void)
{
	static unsigned long state;
	if (!state) {
		unsigned long seed = 0;
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
			seed = (unsigned long)fv_now_ms() ^ ((unsigned long)getpid() << 16);
		if (fd >= 0)
			close(fd);
		state = seed | 1;
	}
	/* xorshift64 */
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

long fv_retry_backoff_ms(const struct fv_retry_policy *policy, int retry)
{
	struct fv_retry_policy p = fv_retry_defaults(policy);
	long d = p.base_ms;
	for (int i = 1; i < retry && d < p.cap_ms; i++)
		d *= 2;
	if (d > p.cap_ms)
		d = p.cap_ms;
	long half = d / 2;
	return d - half + (half ? (long)(jitter_random() % (unsigned long)(half + 1)) : 0);
}

static int month_index(const char *m)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(m, months[i], 3))
			return i;
	return -1;
}

long fv_retry_after_ms(const char *value, time_t now)
{
	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		char *end;
		errno = 0;
		long s = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno || *end || s < 0)
			return -1;
		/* Clamp absurd values rather than overflow: the caller caps anyway. */
		return s > 86400 ? 86400L * 1000 : s * 1000;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	struct tm tm = {0};
	char wday[4], mon[4], zone[4];
	int day, year, hh, mm, ss;
	if (sscanf(value, "%3s, %d %3s %d %d:%d:%d %3s", wday, &day, mon, &year, &hh, &mm, &ss, zone) != 8 ||
	    month_index(mon) < 0 || strcasecmp(zone, "GMT"))
		return -1;
	tm.tm_mday = day;
	tm.tm_mon = month_index(mon);
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	time_t at = timegm(&tm);
	if (at == (time_t)-1)
		return -1;
	return at <= now ? 0 : (long)(at - now > 86400 ? 86400 : at - now) * 1000;
}

bool fv_retry_status(const struct fv_retry_policy *p, long status)
{
	if (status >= 500 && status <= 599)
		return true;
	if (status == 429)
		return true;
	if (status == 409)
		return p && p->retry_conflict;
	return false;
}

int fv_sleep_checked(long ms)
{
	int64_t until = fv_now_ms() + ms;
	for (;;) {
		if (fv_terminated())
			return -EINTR;
		int64_t left = until - fv_now_ms();
		if (left <= 0)
			return 0;
		/* Short slices: the SIGTERM handler does not interrupt every sleep
		 * (a signal may land between the check and nanosleep). */
		fv_sleep_ms(left > 200 ? 200 : (long)left);
	}
}

void fv_poll_start(struct fv_poll *p, long timeout_ms, long first_ms, long max_ms)
{
	p->start_ms = fv_now_ms();
	p->deadline_ms = p->start_ms + timeout_ms;
	p->next_ms = first_ms > 0 ? first_ms : 250;
	p->max_ms = max_ms > p->next_ms ? max_ms : p->next_ms;
	p->rounds = 0;
}

long fv_poll_left_ms(const struct fv_poll *p)
{
	int64_t left = p->deadline_ms - fv_now_ms();
	return left > 0 ? (long)left : 0;
}

long fv_poll_elapsed_ms(const struct fv_poll *p)
{
	return (long)(fv_now_ms() - p->start_ms);
}

int fv_poll_sleep(struct fv_poll *p)
{
	long left = fv_poll_left_ms(p);
	if (left <= 0)
		return -ETIMEDOUT;
	long nap = p->next_ms < left ? p->next_ms : left;
	p->next_ms = p->next_ms * 3 / 2;
	if (p->next_ms > p->max_ms)
		p->next_ms = p->max_ms;
	p->rounds++;
	/* A nap that ends at the deadline still earns one last check; the
	 * call after it finds no time left. */
	return fv_sleep_checked(nap);
}
