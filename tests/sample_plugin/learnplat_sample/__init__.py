"""learnplat-sample: bookmarks, a third-party plugin exercising every learnplat hook."""
