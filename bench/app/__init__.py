"""The benchmarked web app. Standard library only: it runs unchanged as a bare process,
in a FROM-scratch container and as the payload of a VM initramfs."""
