//! Sumsub's rejection labels (its "Receive and interpret results via API" documentation): every temporary (RETRY) and final label with its meaning.

/// One rejection label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectLabel {
    /// The label as Sumsub sends it.
    pub code: &'static str,
    /// What it means, in Sumsub's words.
    pub description: &'static str,
    /// A final label blocks the applicant for good; a temporary one allows a resubmission.
    pub is_final: bool,
}

const fn temporary(code: &'static str, description: &'static str) -> RejectLabel {
    RejectLabel { code, description, is_final: false }
}

const fn final_(code: &'static str, description: &'static str) -> RejectLabel {
    RejectLabel { code, description, is_final: true }
}

/// Every label Sumsub documents, temporary first.
pub static REJECT_LABELS: &[RejectLabel] = &[
    temporary(
        "APPLICANT_INTERRUPTED_INTERVIEW",
        "On the Video identification call, the applicant refused to finish the interview.",
    ),
    temporary("BAD_FACE_MATCHING", "Face check between document and selfie failed."),
    temporary("BAD_PROOF_OF_ADDRESS", "The applicant uploaded a bad proof of address."),
    temporary("BAD_PROOF_OF_IDENTITY", "The applicant uploaded a bad ID document."),
    temporary("BAD_PROOF_OF_PAYMENT", "The applicant uploaded a bad proof of payment."),
    temporary("BAD_SELFIE", "The applicant uploaded a bad selfie."),
    temporary("BAD_VIDEO_SELFIE", "The applicant uploaded a bad video selfie."),
    temporary("BLACK_AND_WHITE", "The applicant uploaded black and white photos of documents."),
    temporary(
        "COMPANY_NOT_DEFINED_BENEFICIARIES",
        "Could not identify and duly verify the entity's beneficial owners.",
    ),
    temporary("COMPANY_NOT_DEFINED_REPRESENTATIVES", "Representatives are not defined."),
    temporary("COMPANY_NOT_DEFINED_STRUCTURE", "Could not establish the entity control structure."),
    temporary("COMPANY_NOT_VALIDATED_BENEFICIARIES", "Beneficiaries are not validated."),
    temporary("COMPANY_NOT_VALIDATED_REPRESENTATIVES", "Representatives are not validated."),
    temporary("CONNECTION_INTERRUPTED", "Video Ident call connection was interrupted."),
    temporary("DOCUMENT_DAMAGED", "Document is damaged."),
    temporary(
        "DOCUMENT_MISSING",
        "On the Video Ident call, the applicant refused to show or did not have required documents.",
    ),
    temporary("DOCUMENT_PAGE_MISSING", "Some pages of a document are missing."),
    temporary("EXPIRATION_DATE", "The user uploaded expired document."),
    temporary("GRAPHIC_EDITOR", "The document has been edited by a graphical editor."),
    temporary("ID_INVALID", "A document that identifies a person (like a passport or an ID card) is not valid."),
    temporary("INCOMPATIBLE_LANGUAGE", "The applicant should upload translation of his document."),
    temporary("INCOMPLETE_DOCUMENT", "Some information is missing from the document, or it's partially visible."),
    temporary("INCORRECT_SOCIAL_NUMBER", "The applicant provided an incorrect social number (SSN, for example)."),
    temporary("PROBLEMATIC_APPLICANT_DATA", "Applicant data does not match the data in the documents."),
    temporary("SCREENSHOTS", "The applicant uploaded screenshots."),
    temporary("UNSATISFACTORY_PHOTOS", "There were problems with the photos, like poor quality or masked information."),
    temporary("UNSUITABLE_ENV", "On Video Ident call, the applicant is either not alone or nor visible."),
    temporary("WRONG_ADDRESS", "The address from the documents doesn't match the address that the user entered."),
    final_("ADVERSE_MEDIA", "The applicant was found in the adverse media."),
    final_("AGE_REQUIREMENT_MISMATCH", "Age requirement is not met (e.g. cannot rent a car to a person below 25yo)."),
    final_("BLACKLIST", "Applicant is blocklisted by our side."),
    final_("BLOCKLIST", "Applicant is blocklisted by your side."),
    final_("CHECK_UNAVAILABLE", "The database is not available."),
    final_("COMPROMISED_PERSONS", "The applicant does not correspond to Compromised Person Politics."),
    final_("CRIMINAL", "The applicant is involved in illegal actions."),
    final_(
        "DUPLICATE",
        "This applicant was already created for this client, and duplicates are not allowed by the regulations.",
    ),
    final_("FORGERY", "Forgery attempt has been made."),
    final_("FRAUDULENT_LIVENESS", "There was an attempt to bypass liveness check."),
    final_("FRAUDULENT_PATTERNS", "Fraudulent behaviour was detected."),
    final_("INCONSISTENT_PROFILE", "Data or documents of different persons were uploaded to one applicant."),
    final_("PEP", "The applicant belongs to the PEP category."),
    final_("REGULATIONS_VIOLATIONS", "Regulations violations."),
    final_("SANCTIONS", "The applicant was found on sanction lists."),
    final_("SELFIE_MISMATCH", "An applicant photo (profile image) does not match a photo on the provided documents."),
    final_(
        "SPAM",
        "An applicant has been created by mistake or is just a spam user (irrelevant images were supplied).",
    ),
    final_("NOT_DOCUMENT", "Documents supplied are not relevant for the verification procedure."),
    final_("THIRD_PARTY_INVOLVED", "The applicant is doing verification from a third party for a fee."),
    final_("UNSUPPORTED_LANGUAGE", "Unsupported language for video identification."),
    final_("WRONG_USER_REGION", "When applicants from certain regions/countries are not allowed to be registered."),
];

/// The label with this code, if Sumsub documents it.
pub fn reject_label(code: &str) -> Option<&'static RejectLabel> {
    REJECT_LABELS.iter().find(|l| l.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_003_has_28_temporary_and_21_final_labels() {
        assert_eq!(REJECT_LABELS.iter().filter(|l| !l.is_final).count(), 28);
        assert_eq!(REJECT_LABELS.iter().filter(|l| l.is_final).count(), 21);
        assert!(reject_label("FORGERY").is_some_and(|l| l.is_final));
        assert!(reject_label("GRAPHIC_EDITOR").is_some_and(|l| !l.is_final));
        assert!(reject_label("SOMETHING_NEW").is_none());
    }
}
