//! The `details` field table of Fractal's user-information documentation ("User information retrieval"), as data: one
//! row per detail (wire name, GraphQL type, format, items, who has it). The gateway's scope rule and GraphQL type and
//! the sandbox's population all read this one table.

/// Calls `$callback!` with every row of the details table.
///
/// Row syntax: `wire_name: RustType = Format[(choices)] [items] Restriction "description";`
#[macro_export]
macro_rules! with_details_fields {
    ($callback:ident) => {
        $callback! {
            // Identification related fields.
            date_of_birth: String = Date [plus, basic] Any "Date of birth (YYYY-MM-DD).";
            full_name: String = Text [plus, basic] Any "Full name as on the identification document.";
            identification_document_back_file: String = Url [selfie, basic] Any "Back side of the identification document (URL, expires after a few hours).";
            identification_document_country: String = Country [plus, basic] Any "Issuing country of the identification document (ISO 3166-1 alpha-2).";
            identification_document_front_file: String = Url [selfie, basic] Any "Front side of the identification document (URL, expires after a few hours).";
            identification_document_number: String = Text [plus, basic] Any "Number of the identification document.";
            identification_document_type: String = Choice(national_id, passport, drivers_license) [plus] Any "Type of identification document: national_id, passport or drivers_license.";
            place_of_birth: String = Text [plus] Any "Place of birth.";
            identification_document_selfie_file: String = Url [selfie] Any "Selfie holding the identification document (URL, expires after a few hours).";
            identification_document_date_of_issue: String = Date [plus, basic] Any "Issue date of the identification document (YYYY-MM-DD).";
            identification_document_date_of_expiry: String = Date [plus, basic] Any "Expiry date of the identification document (YYYY-MM-DD).";
            // Liveness related fields.
            liveness: bool = Bool [liveness] Any "Whether the liveness check passed.";
            liveness_audit_best_file: String = Url [liveness] Any "Best image of the user from the liveness check (URL).";
            liveness_audit_least_similar_file: String = Url [liveness] Any "Image least similar to the best one (URL).";
            liveness_audit_open_eyes_file: String = Url [liveness] Any "Image where the user's eyes are the most open (URL).";
            liveness_audit_quality1_file: String = Url [liveness] Any "Next highest quality liveness image, 1 of 3 (URL).";
            liveness_audit_quality2_file: String = Url [liveness] Any "Next highest quality liveness image, 2 of 3 (URL).";
            liveness_audit_quality3_file: String = Url [liveness] Any "Next highest quality liveness image, 3 of 3 (URL).";
            // Institution related fields.
            articles_of_association_file: String = Url [plus] Institution "Articles of association (URL).";
            beneficial_owner: String = Text [plus] Institution "Beneficial owner.";
            certificate_of_corporate_status_file: String = Url [plus] Institution "Certificate of corporate status (URL; Canadian institutions).";
            certificate_of_good_standing_file: String = Url [plus] Institution "Certificate of good standing (URL; US institutions).";
            certificate_of_incorporation_file: String = Url [plus] Institution "Certificate of incorporation (URL; US and Canadian institutions).";
            commercial_register_entry_file: String = Url [plus] Institution "Commercial register entry (URL).";
            commercial_register: String = Text [plus] Institution "Commercial register.";
            company_name: String = Text [plus] Institution "Company name.";
            company_seat: String = Text [plus] Institution "Company seat.";
            jurisdiction: String = Text [plus] Institution "Jurisdiction.";
            legal_form: String = Text [plus] Institution "Legal form.";
            managing_directors: String = Text [plus] Institution "Managing directors.";
            owner_identity_proof_file: String = Url [plus] Institution "Proof of the owner's identity (URL).";
            power_of_attorney_file: String = Url [plus] Institution "Power of attorney (URL).";
            secretary_certificate_file: String = Url [plus] Institution "Secretary certificate (URL; US and Canadian institutions).";
            shareholders_list_file: String = Url [plus] Institution "List of shareholders (URL).";
            transparency_register_entry_file: String = Url [plus] Institution "Transparency register entry (URL).";
            unique_identification_number: String = Text [plus] Institution "Unique identification number (US, Singapore and Hong Kong institutions).";
            // Residency related fields.
            residential_address_country: String = Country [plus] Any "Country of residence (ISO 3166-1 alpha-2).";
            residential_address_proof_file: String = Url [plus] Any "Proof of residential address (URL).";
            residential_address: String = Text [plus] Any "Residential address.";
            residential_address_line1: String = Text [plus] Any "Residential address, line 1 (split address configuration).";
            residential_address_line2: String = Text [plus] Any "Residential address, line 2 (split address configuration).";
            residential_address_city: String = Text [plus] Any "Residential address, city (split address configuration).";
            residential_address_zip: String = Text [plus] Any "Residential address, postal code (split address configuration).";
            residential_address_proof_date_of_expiry: String = Date [plus] Any "Expiry date of the proof of address (YYYY-MM-DD).";
            // Source of wealth related fields.
            sow_estimated_net_worth_currency: String = Choice(EUR, USD) [sow] Any "Currency of the estimated net worth: EUR or USD.";
            sow_estimated_net_worth_value: String = Text [sow] Any "Estimated net worth.";
            sow_balance_sheet_file: String = Url [sow] Institution "Balance sheet (URL).";
            sow_cash_flow_statement_file: String = Url [sow] Institution "Cash flow statement (URL).";
            sow_income_statement_file: String = Url [sow] Institution "Income statement (URL).";
            sow_unaudited_accountant_name: String = Text [sow] Institution "Name of the accountant of unaudited statements.";
            sow_unaudited_accountant_professional_body: String = Text [sow] Institution "Professional body of the accountant of unaudited statements.";
            sow_type: String = Choice(crypto, dividends, divorce_settlement, freelance, gifts, inheritance, lease_revenue, life_policy, pension, salary, sale_of_company, sale_of_property, sale_of_shares) [sow] Person "Source of wealth type.";
            sow_crypto_bank_statement_file: String = Url [sow] Person "Crypto: bank statement (URL).";
            sow_crypto_source_of_initial_investment_file: String = Url [sow] Person "Crypto: source of the initial investment (URL).";
            sow_crypto_transactions_last_3_months_file: String = Url [sow] Person "Crypto: transactions of the last 3 months (URL).";
            sow_dividends_bank_statement_file: String = Url [sow] Person "Dividends: bank statement (URL).";
            sow_dividends_entitlement_file: String = Url [sow] Person "Dividends: entitlement (URL).";
            sow_divorce_settlement_bank_statement_file: String = Url [sow] Person "Divorce settlement: bank statement (URL).";
            sow_divorce_settlement_proof_file: String = Url [sow] Person "Divorce settlement: proof (URL).";
            sow_freelance_bank_statement_file: String = Url [sow] Person "Freelance: bank statement (URL).";
            sow_freelance_last_year_tax_returns_file: String = Url [sow] Person "Freelance: last year's tax returns (URL).";
            sow_freelance_service_contracts_file: String = Url [sow] Person "Freelance: service contracts (URL).";
            sow_gifts_bank_statement_file: String = Url [sow] Person "Gifts: bank statement (URL).";
            sow_gifts_name_of_donator: String = Text [sow] Person "Gifts: name of the donator.";
            sow_gifts_reason_for_donation: String = Text [sow] Person "Gifts: reason for the donation.";
            sow_gifts_relationship_with_donator: String = Text [sow] Person "Gifts: relationship with the donator.";
            sow_inheritance_bank_statement_file: String = Url [sow] Person "Inheritance: bank statement (URL).";
            sow_inheritance_proof_file: String = Url [sow] Person "Inheritance: proof (URL).";
            sow_lease_revenue_agreement_file: String = Url [sow] Person "Lease revenue: agreement (URL).";
            sow_lease_revenue_bank_statement_file: String = Url [sow] Person "Lease revenue: bank statement (URL).";
            sow_life_policy_bank_statement_file: String = Url [sow] Person "Life policy: bank statement (URL).";
            sow_life_policy_closing_statement_file: String = Url [sow] Person "Life policy: closing statement (URL).";
            sow_pension_bank_statement_file: String = Url [sow] Person "Pension: bank statement (URL).";
            sow_pension_statement_file: String = Url [sow] Person "Pension: statement (URL).";
            sow_salary_bank_statement_file: String = Url [sow] Person "Salary: bank statement (URL).";
            sow_salary_last_year_tax_returns_file: String = Url [sow] Person "Salary: last year's tax returns (URL).";
            sow_salary_pay_slips_last_3_months_file: String = Url [sow] Person "Salary: pay slips of the last 3 months (URL).";
            sow_sale_of_company_bank_statement_file: String = Url [sow] Person "Sale of company: bank statement (URL).";
            sow_sale_of_company_contract_file: String = Url [sow] Person "Sale of company: contract (URL).";
            sow_sale_of_property_bank_statement_file: String = Url [sow] Person "Sale of property: bank statement (URL).";
            sow_sale_of_property_contract_file: String = Url [sow] Person "Sale of property: contract (URL).";
            sow_sale_of_shares_bank_statement_file: String = Url [sow] Person "Sale of shares: bank statement (URL).";
            sow_sale_of_shares_proof_file: String = Url [sow] Person "Sale of shares: proof (URL).";
            // Social security related fields.
            social_security_number: String = Text [ssn] Any "Social security number (US residents only).";
        }
    };
}

/// The shape of a details value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Free text.
    Text,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A URL of a file (which expires after a few hours).
    Url,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// Which kind of verified party a field exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Persons and institutions.
    Any,
    /// Persons only.
    Person,
    /// Institutions only.
    Institution,
}

/// One row of the details table.
#[derive(Debug)]
pub struct DetailField {
    /// The provider's wire name (`full_name`); GraphQL exposes it in camelCase (`fullName`).
    pub name: &'static str,
    /// What the value looks like.
    pub format: Format,
    /// The levels or add-ons this field belongs to.
    pub items: &'static [&'static str],
    /// Who has the field: persons, institutions, or both.
    pub restriction: Restriction,
    /// What the field holds, in Fractal's words.
    pub description: &'static str,
}

impl DetailField {
    /// The GraphQL name of the field: the wire name in camelCase.
    pub fn graphql_name(&self) -> String {
        let mut out = String::with_capacity(self.name.len());
        let mut upper = false;
        for c in self.name.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }
}

macro_rules! details_table {
    ($( $name:ident : $ty:ty = $fmt:ident $( ( $($choice:ident),+ ) )? [$($item:ident),+] $restr:ident $doc:literal; )*) => {
        /// Every details field, in the order of the documentation's table.
        pub static DETAIL_FIELDS: &[DetailField] = &[
            $( DetailField {
                name: stringify!($name),
                format: details_table!(@format $fmt $( ( $($choice),+ ) )?),
                items: &[$(stringify!($item)),+],
                restriction: Restriction::$restr,
                description: $doc,
            }, )*
        ];
    };
    (@format Choice ( $($choice:ident),+ )) => { Format::Choice(&[$(stringify!($choice)),+]) };
    (@format $fmt:ident) => { Format::$fmt };
}
with_details_fields!(details_table);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_field_of_seed_001_once() {
        assert_eq!(DETAIL_FIELDS.len(), 84);
        let mut names: Vec<_> = DETAIL_FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DETAIL_FIELDS.len());
    }

    #[test]
    fn graphql_names_are_camel_case() {
        let by_name = |n: &str| DETAIL_FIELDS.iter().find(|f| f.name == n).expect("field in table");
        assert_eq!(by_name("full_name").graphql_name(), "fullName");
        assert_eq!(by_name("liveness_audit_quality1_file").graphql_name(), "livenessAuditQuality1File");
        assert_eq!(
            by_name("sow_crypto_transactions_last_3_months_file").graphql_name(),
            "sowCryptoTransactionsLast3MonthsFile"
        );
    }
}
