"""nfv: Click-language network functions compiled to one fused pipeline,
run on the host or booted as a tiny KVM unikernel."""

__version__ = "0.1.0"
