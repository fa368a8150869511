"""The LTI plugin: LTI 1.3 Advantage in both roles (docs/lti.md). As a platform, a school's
courses launch external tools (`lti` modules), take their Deep Linking picks, scores (AGS)
and roster requests (NRPS); as a tool, a school's courses are launched from another LMS,
which gets the learners' grades back."""
