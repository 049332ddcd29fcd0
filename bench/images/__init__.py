"""Images the setups run: one root filesystem built from the host's own interpreter, then the
container image (`docker_image`) and the VM initramfs made from it, so every layer runs the
very bits the bare process runs."""
