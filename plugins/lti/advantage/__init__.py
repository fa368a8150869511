"""LTI Advantage services learnplat offers tools as platform: the OAuth 2 token endpoint,
Assignment and Grade Services 2.0 and Names and Role Provisioning Services 2.0."""
