# The cinder driver: OpenStack Cinder volumes through Keystone, Nova and Cinder.
cinder_SRCS := providers/cinder/cinder.c providers/cinder/openstack.c providers/cinder/doctor.c
cinder_LIBS := libcurl
