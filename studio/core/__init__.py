"""The domain: plain Python, no Qt. torch is imported only inside training code."""
