"""The certificates plugin: certificates issued in the background when a learner completes a
course (PDF with a QR code, an Open Badges 3.0 credential), public verification, revocation."""
