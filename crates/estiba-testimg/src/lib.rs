//! Test and sample images made offline from Debian's busybox-static, written as docker-archive
//! or OCI-layout tarballs; also the hostile tarballs the test suite feeds to `docker load`.
