"""learnplat built-in plugin: identity."""
