"""Broker simulator: realistic fill latency, rejections, disconnects and slow fills on demand."""
