"""learnplat built-in plugin: media (module videos and attached files, signed streaming URLs)."""
