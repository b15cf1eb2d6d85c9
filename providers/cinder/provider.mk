# The cinder driver: OpenStack Cinder volumes through Keystone, Nova and Cinder.
cinder_SRCS := providers/cinder/cinder.c providers/cinder/openstack.c providers/cinder/clouds.c providers/cinder/doctor.c
cinder_LIBS := libcurl yaml-0.1
