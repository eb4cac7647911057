//! Errors collected over a phase, so one build reports every mistake of a table.

use proc_macro2::Span;

/// Collected errors, folded with `syn::Error::combine`.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// An error at `span`.
    pub fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.add(syn::Error::new(span, msg));
    }

    /// An error at `span` with a second message at `note_span`, e.g. where a duplicated
    /// name is first declared.
    pub fn push_with_note(
        &mut self,
        span: Span,
        msg: impl std::fmt::Display,
        note_span: Span,
        note: impl std::fmt::Display,
    ) {
        let mut e = syn::Error::new(span, msg);
        e.combine(syn::Error::new(note_span, note));
        self.add(e);
    }

    fn add(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// `Ok(value)` when nothing was reported.
    pub fn finish<T>(self, value: T) -> Result<T, syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}
