/*
 * The two functions Aeron's C media driver takes from libraries outside
 * glibc 2.17: arc4random (libbsd; in glibc only since 2.36) and
 * uuid_generate (libuuid). Defined here, and linked whole into the bridge,
 * so that nothing built with the bridge needs either library at run time:
 * the portable wheel (manylinux_2_17) depends on glibc alone.
 *
 * Both draw from the kernel's random source (getrandom(2), or /dev/urandom
 * on kernels without it). Aeron uses them for session ids and the driver's
 * client id: unpredictable and unique is all they need.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_getrandom
#if defined(__x86_64__)
#define SYS_getrandom 318
#elif defined(__aarch64__)
#define SYS_getrandom 278
#endif
#endif

static int fill_from_urandom(unsigned char *p, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
    {
        return -1;
    }
    while (len > 0)
    {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
        {
            continue;
        }
        if (n <= 0)
        {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return 0;
}

static void fill_random(void *buf, size_t len)
{
    unsigned char *p = buf;
#ifdef SYS_getrandom
    while (len > 0)
    {
        long n = syscall(SYS_getrandom, p, len, 0);
        if (n < 0 && errno == EINTR)
        {
            continue;
        }
        if (n <= 0)
        {
            break; /* ENOSYS: a kernel older than 3.17 */
        }
        p += n;
        len -= (size_t)n;
    }
#endif
    if (len > 0 && fill_from_urandom(p, len) != 0)
    {
        abort(); /* no source of randomness at all: nothing safe to return */
    }
}

uint32_t arc4random(void)
{
    uint32_t value;
    fill_random(&value, sizeof(value));
    return value;
}

/* A random (version 4, RFC 4122 variant) UUID, as libuuid's. */
void uuid_generate(unsigned char out[16])
{
    fill_random(out, 16);
    out[6] = (unsigned char)((out[6] & 0x0F) | 0x40);
    out[8] = (unsigned char)((out[8] & 0x3F) | 0x80);
}
