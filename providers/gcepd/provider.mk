# The gcepd driver: Google Compute Engine persistent disks through compute v1,
# with the metadata server's token or a service-account key (RS256 JWT: libcrypto).
gcepd_SRCS := providers/gcepd/gcepd.c providers/gcepd/gce.c providers/gcepd/gceutil.c providers/gcepd/jwt.c \
              providers/gcepd/doctor.c
gcepd_LIBS := libcurl libcrypto
