"""Model parts: latents, quantization, ARM, LSN and the codec that wires them."""
